package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie and form field names.
const (
	sessionCookie = "sid"        // "<user_id>.<token>", HttpOnly
	csrfCookie    = "csrf"       // random token for forms shown before login
	csrfField     = "csrf_token" // hidden form field
	tokenLen      = 32           // bytes of randomness in session and CSRF tokens
)

var b64url = base64.RawURLEncoding

// sessionKey is what the session cookie carries: the user id (the shard key,
// so the lookup goes to one shard) and a random secret. The database stores
// only a SHA-256 of the secret, so a leaked sessions table cannot be replayed.
type sessionKey struct {
	UserID int64
	Token  []byte
}

// newSessionKey returns a fresh random session for userID.
func newSessionKey(userID int64) (sessionKey, error) {
	tok := make([]byte, tokenLen)
	if _, err := rand.Read(tok); err != nil {
		return sessionKey{}, err
	}
	return sessionKey{UserID: userID, Token: tok}, nil
}

// String is the cookie value.
func (k sessionKey) String() string {
	return strconv.FormatInt(k.UserID, 10) + "." + b64url.EncodeToString(k.Token)
}

// parseSessionKey parses a cookie value; ok is false for anything malformed.
func parseSessionKey(v string) (k sessionKey, ok bool) {
	id, tok, found := strings.Cut(v, ".")
	if !found || len(tok) != b64url.EncodedLen(tokenLen) {
		return sessionKey{}, false
	}
	uid, err := strconv.ParseInt(id, 10, 64)
	if err != nil || uid <= 0 {
		return sessionKey{}, false
	}
	raw, err := b64url.DecodeString(tok)
	if err != nil || len(raw) != tokenLen {
		return sessionKey{}, false
	}
	return sessionKey{UserID: uid, Token: raw}, true
}

// hash is the value stored in sessions.token_hash.
func (k sessionKey) hash() []byte {
	sum := sha256.Sum256(k.Token)
	return sum[:]
}

// csrfToken is the form token of a logged-in user: an HMAC keyed by the
// session secret. A page from any instance carries the same token, an
// attacker who cannot read the HttpOnly session cookie cannot compute it, and
// it dies with the session.
func (k sessionKey) csrfToken() string {
	m := hmac.New(sha256.New, k.Token)
	m.Write([]byte("tiergate-webapp csrf v1"))
	return b64url.EncodeToString(m.Sum(nil))
}

// randomToken returns tokenLen random bytes, base64url encoded.
func randomToken() (string, error) {
	b := make([]byte, tokenLen)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64url.EncodeToString(b), nil
}

// newID returns a random positive 63-bit id. User ids are made by the app,
// not by a sequence, so the shard key is known before the first insert and
// ids never collide across shards.
func newID() (int64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := int64(binary.BigEndian.Uint64(b[:]) >> 1); id > 0 {
			return id, nil
		}
	}
}

// tokensEqual compares two tokens in constant time (for equal lengths).
func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secureRequest reports whether the client reached us over TLS, directly or
// through the edge, so cookies can be marked Secure.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets an HttpOnly, SameSite=Lax cookie for the whole site; maxAge
// < 0 deletes it.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   secureRequest(r),
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}
