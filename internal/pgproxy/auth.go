package pgproxy

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// scramIterations is the PBKDF2 cost of verifiers derived from clear-text
// passwords (PostgreSQL's default scram_iterations).
const scramIterations = 4096

// errAuthFailed is any failed client login. The client is told only that
// password authentication failed, never whether the user exists.
var errAuthFailed = errors.New("password authentication failed")

// credentials is what the proxy knows about one user's password: a SCRAM
// verifier always, and the md5 inner hash when the password is clear text
// or an md5 hash.
type credentials struct {
	salt       []byte
	iterations int
	storedKey  []byte
	serverKey  []byte
	md5Hash    string // hex md5(password || user), "" when unknown
}

// isHashedPassword reports whether p is a stored verifier rather than clear
// text.
func isHashedPassword(p string) bool {
	return strings.HasPrefix(p, "SCRAM-SHA-256$") || (len(p) == 35 && strings.HasPrefix(p, "md5") && isHex(p[3:]))
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// newCredentials derives credentials from a clear-text password, a SCRAM
// verifier ("SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>") or an md5
// hash ("md5" + hex md5(password || user)).
func newCredentials(user, password string) (*credentials, error) {
	switch {
	case strings.HasPrefix(password, "SCRAM-SHA-256$"):
		return parseSCRAMVerifier(password)
	case len(password) == 35 && strings.HasPrefix(password, "md5") && isHex(password[3:]):
		// Only md5 logins can be checked against an md5 hash; SCRAM would need
		// the password. Use a random verifier so SCRAM logins always fail.
		c := &credentials{md5Hash: password[3:], iterations: scramIterations}
		c.salt = randomBytes(16)
		c.storedKey = randomBytes(32)
		c.serverKey = randomBytes(32)
		return c, nil
	}
	salt := randomBytes(16)
	c, err := scramFromPassword(password, salt, scramIterations)
	if err != nil {
		return nil, err
	}
	sum := md5.Sum([]byte(password + user))
	c.md5Hash = hex.EncodeToString(sum[:])
	return c, nil
}

func scramFromPassword(password string, salt []byte, iterations int) (*credentials, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("derive SCRAM key: %w", err)
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return &credentials{
		salt:       salt,
		iterations: iterations,
		storedKey:  stored[:],
		serverKey:  hmacSHA256(salted, []byte("Server Key")),
	}, nil
}

func parseSCRAMVerifier(v string) (*credentials, error) {
	bad := errors.New("malformed SCRAM-SHA-256 verifier (want SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)")
	rest := strings.TrimPrefix(v, "SCRAM-SHA-256$")
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, bad
	}
	iterS, saltS, ok1 := strings.Cut(iterSalt, ":")
	storedS, serverS, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return nil, bad
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter < 1 {
		return nil, bad
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltS)
	stored, err2 := base64.StdEncoding.DecodeString(storedS)
	server, err3 := base64.StdEncoding.DecodeString(serverS)
	if err1 != nil || err2 != nil || err3 != nil || len(stored) != sha256.Size || len(server) != sha256.Size {
		return nil, bad
	}
	return &credentials{salt: salt, iterations: iter, storedKey: stored, serverKey: server}, nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// authConn is the part of a client connection authentication needs.
type authConn interface {
	send(msg pgproto3.BackendMessage) error
	receive() (pgproto3.FrontendMessage, error)
	setAuthType(t uint32) error
}

// authenticate runs the login exchange for method with creds. For an
// unknown user (known false) the exchange runs anyway, with a mock salt, and
// fails. It returns errAuthFailed on a wrong password and other errors on
// protocol problems.
func authenticate(c authConn, method, user string, creds *credentials, known bool, mock []byte) error {
	if !known {
		creds = nil
	}
	switch method {
	case "trust":
		if !known {
			return errAuthFailed
		}
		return nil
	case "md5":
		return authMD5(c, user, creds)
	default:
		return authSCRAM(c, creds, mock)
	}
}

func authMD5(c authConn, user string, creds *credentials) error {
	var salt [4]byte
	copy(salt[:], randomBytes(4))
	if err := c.send(&pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
		return err
	}
	if err := c.setAuthType(pgproto3.AuthTypeMD5Password); err != nil {
		return err
	}
	msg, err := c.receive()
	if err != nil {
		return err
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return fmt.Errorf("%w: expected a password message, got %T", errProtocol, msg)
	}
	if creds == nil || creds.md5Hash == "" {
		return errAuthFailed
	}
	sum := md5.Sum(append([]byte(creds.md5Hash), salt[:]...))
	want := "md5" + hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(want), []byte(pw.Password)) != 1 {
		return errAuthFailed
	}
	return nil
}

// authSCRAM is the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without
// channel binding. When creds is nil (unknown user) a mock verifier salted
// with mock keeps the exchange indistinguishable until it fails.
func authSCRAM(c authConn, creds *credentials, mock []byte) error {
	fail := creds == nil
	if fail {
		creds = &credentials{salt: mock, iterations: scramIterations, storedKey: randomBytes(32), serverKey: randomBytes(32)}
	}
	if err := c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}}); err != nil {
		return err
	}
	if err := c.setAuthType(pgproto3.AuthTypeSASL); err != nil {
		return err
	}
	msg, err := c.receive()
	if err != nil {
		return err
	}
	init, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return fmt.Errorf("%w: expected SASLInitialResponse, got %T", errProtocol, msg)
	}
	if init.AuthMechanism != "SCRAM-SHA-256" {
		return fmt.Errorf("%w: unsupported SASL mechanism %q", errProtocol, init.AuthMechanism)
	}
	clientFirstBare, clientNonce, err := parseClientFirst(string(init.Data))
	if err != nil {
		return err
	}
	serverNonce := clientNonce + base64.RawStdEncoding.EncodeToString(randomBytes(18))
	serverFirst := "r=" + serverNonce + ",s=" + base64.StdEncoding.EncodeToString(creds.salt) + ",i=" + strconv.Itoa(creds.iterations)
	if err := c.send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}); err != nil {
		return err
	}
	if err := c.setAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	msg, err = c.receive()
	if err != nil {
		return err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fmt.Errorf("%w: expected SASLResponse, got %T", errProtocol, msg)
	}
	clientFinal := string(resp.Data)
	withoutProof, proofB64, ok := strings.Cut(clientFinal, ",p=")
	if !ok {
		return fmt.Errorf("%w: SCRAM client-final-message has no proof", errProtocol)
	}
	var gotNonce, cbind string
	for _, attr := range strings.Split(withoutProof, ",") {
		switch {
		case strings.HasPrefix(attr, "c="):
			cbind = attr[2:]
		case strings.HasPrefix(attr, "r="):
			gotNonce = attr[2:]
		}
	}
	if gotNonce != serverNonce {
		return fmt.Errorf("%w: SCRAM nonce mismatch", errProtocol)
	}
	if cbind != "biws" && cbind != "eSws" { // base64("n,,") or base64("y,,")
		return fmt.Errorf("%w: SCRAM channel binding is not supported", errProtocol)
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size {
		return fmt.Errorf("%w: malformed SCRAM proof", errProtocol)
	}
	authMessage := []byte(clientFirstBare + "," + serverFirst + "," + withoutProof)
	clientSig := hmacSHA256(creds.storedKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	for i := range clientKey {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	got := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(got[:], creds.storedKey) != 1 || fail {
		return errAuthFailed
	}
	serverSig := hmacSHA256(creds.serverKey, authMessage)
	return c.send(&pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + base64.StdEncoding.EncodeToString(serverSig))})
}

// parseClientFirst splits "n,,n=user,r=nonce" into the bare part and the
// nonce.
func parseClientFirst(s string) (bare, nonce string, err error) {
	bad := fmt.Errorf("%w: malformed SCRAM client-first-message", errProtocol)
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(s, ",")
	if !ok || (flag != "n" && flag != "y") {
		if strings.HasPrefix(flag, "p=") {
			return "", "", fmt.Errorf("%w: SCRAM channel binding is not supported", errProtocol)
		}
		return "", "", bad
	}
	_, bare, ok = strings.Cut(rest, ",")
	if !ok {
		return "", "", bad
	}
	for _, attr := range strings.Split(bare, ",") {
		if strings.HasPrefix(attr, "r=") {
			nonce = attr[2:]
		}
	}
	if nonce == "" {
		return "", "", bad
	}
	return bare, nonce, nil
}

// mockSalt is a stable fake salt for an unknown user, so probing the same
// name twice sees the same salt (as PostgreSQL does).
func mockSalt(secret []byte, user string) []byte {
	return hmacSHA256(secret, []byte("mock salt:"+user))[:16]
}
