package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tiergate/tiergate/internal/pgtest"
)

// testIterations keeps PBKDF2 cheap in tests; the stored form records it.
const testIterations = 1000

// startApp runs one app instance on an httptest server against dsn.
func startApp(t *testing.T, dsn, name string) *httptest.Server {
	t.Helper()
	pool, err := newConnPool(dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.close)
	cfg := appConfig{Name: name, ServeStatic: true, PasswordIterations: testIterations}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, pool, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

// initSchema applies the schema through a short-lived pool.
func initSchema(t *testing.T, dsn string) {
	t.Helper()
	pool, err := newConnPool(dsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (&store{pool: pool}).initSchema(ctx); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so tests see the 303s.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

type response struct {
	status int
	header http.Header
	body   string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: srv.URL, hc: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// at returns a browser for another instance that carries the same cookies
// (a load balancer sending this user's next request elsewhere).
func (b *browser) at(srv *httptest.Server) *browser {
	b.t.Helper()
	nb := newBrowser(b.t, srv)
	from, _ := url.Parse(b.base)
	to, _ := url.Parse(srv.URL)
	nb.hc.Jar.SetCookies(to, b.hc.Jar.Cookies(from))
	return nb
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.base)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// csrf returns the form token on page path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	r := b.get(path)
	m := csrfRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || m[1] == "" {
		b.t.Fatalf("GET %s: %d, no CSRF token in:\n%s", path, r.status, r.body)
	}
	return m[1]
}

// signup creates name and returns its user page path ("/u/<id>").
func (b *browser) signup(name, password string) string {
	b.t.Helper()
	r := b.post("/signup", url.Values{"name": {name}, "password": {password}, "csrf_token": {b.csrf("/login")}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/u/") {
		b.t.Fatalf("signup %s: %d %s\n%s", name, r.status, r.header.Get("Location"), r.body)
	}
	return r.header.Get("Location")
}

func (b *browser) postText(userPath, text string) response {
	b.t.Helper()
	return b.post("/posts", url.Values{"body": {text}, "csrf_token": {b.csrf(userPath)}})
}

func expect(t *testing.T, what string, r response, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.status, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Fatalf("%s: body lacks %q:\n%s", what, s, r.body)
		}
	}
}

// TestApp drives two instances sharing one PostgreSQL server through the
// whole user journey.
func TestApp(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t, pgtest.Spec{Name: "webapp"})
	dsn := db.Primary().DSN()
	initSchema(t, dsn)
	initSchema(t, dsn) // idempotent
	web1 := startApp(t, dsn, "web1")
	web2 := startApp(t, dsn, "web2")

	alice := newBrowser(t, web1)
	alicePage := alice.signup("Alice", "correct horse")

	t.Run("signup, post, user page and feed", func(t *testing.T) {
		sid := alice.cookie(sessionCookie)
		if sid == nil || !strings.HasPrefix(sid.Value, strings.TrimPrefix(alicePage, "/u/")+".") {
			t.Fatalf("session cookie %v does not carry the user id of %s", sid, alicePage)
		}
		r := alice.get(alicePage)
		expect(t, "own page", r, http.StatusOK, "@alice", `action="/posts"`)
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "private") {
			t.Errorf("user page Cache-Control %q is not private", cc)
		}
		r = alice.postText(alicePage, "hello from <alice>")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != alicePage {
			t.Fatalf("post: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
		}
		expect(t, "user page", alice.get(alicePage), http.StatusOK, "hello from &lt;alice&gt;")

		anon := newBrowser(t, web1)
		r = anon.get("/")
		expect(t, "feed", r, http.StatusOK, "hello from &lt;alice&gt;", `href="`+alicePage+`"`)
		if got := r.header.Get("Cache-Control"); got != "public, max-age=5" {
			t.Errorf("feed Cache-Control = %q", got)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("feed sets a cookie: %q", r.header.Get("Set-Cookie"))
		}
		if got := r.header.Get("X-Backend"); got != "web1" {
			t.Errorf("X-Backend = %q", got)
		}
		// A stranger sees the page but not the form.
		r = anon.get(alicePage)
		expect(t, "stranger", r, http.StatusOK, "hello from &lt;alice&gt;")
		if strings.Contains(r.body, `action="/posts"`) {
			t.Error("a stranger gets the post form")
		}
		// The feed looks the same when logged in: it is cached publicly.
		if mine := alice.get("/"); mine.body != anon.get("/").body {
			t.Error("the feed differs for a logged-in user; a shared cache would leak it")
		}
	})

	t.Run("second instance accepts the session", func(t *testing.T) {
		on2 := alice.at(web2)
		r := on2.get(alicePage)
		expect(t, "page on web2", r, http.StatusOK, `action="/posts"`, "@alice")
		if got := r.header.Get("X-Backend"); got != "web2" {
			t.Errorf("X-Backend = %q, want web2", got)
		}
		// A token from web1's page is valid on web2: it derives from the session.
		tok := alice.csrf(alicePage)
		r = on2.post("/posts", url.Values{"body": {"written via web2"}, "csrf_token": {tok}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("post on web2: %d\n%s", r.status, r.body)
		}
		expect(t, "feed on web1", alice.get("/"), http.StatusOK, "written via web2")
		r = on2.get("/me")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != alicePage {
			t.Fatalf("/me on web2: %d %q", r.status, r.header.Get("Location"))
		}
	})

	t.Run("login", func(t *testing.T) {
		tests := []struct {
			name, user, password string
			status               int
		}{
			{"wrong password", "alice", "wrong horse", http.StatusUnauthorized},
			{"unknown user", "nobody", "correct horse", http.StatusUnauthorized},
			{"invalid name", "x", "correct horse", http.StatusUnauthorized},
			{"right password, other case", "ALICE", "correct horse", http.StatusSeeOther},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := newBrowser(t, web2)
				r := b.post("/login", url.Values{"name": {tt.user}, "password": {tt.password}, "csrf_token": {b.csrf("/login")}})
				if r.status != tt.status {
					t.Fatalf("status %d, want %d\n%s", r.status, tt.status, r.body)
				}
				if tt.status != http.StatusSeeOther {
					expect(t, "login", r, tt.status, msgWrongLogin)
					if b.cookie(sessionCookie) != nil {
						t.Fatal("failed login set a session cookie")
					}
					return
				}
				if r.header.Get("Location") != alicePage {
					t.Fatalf("login went to %q", r.header.Get("Location"))
				}
				expect(t, "after login", b.get(alicePage), http.StatusOK, `action="/posts"`)
			})
		}
	})

	t.Run("CSRF token required", func(t *testing.T) {
		bob := newBrowser(t, web1)
		bobPage := bob.signup("bob", "hunter2hunter2")
		aliceTok := alice.csrf(alicePage)
		loginTok := newBrowser(t, web1).csrf("/login") // another browser's cookie token
		mallory := newBrowser(t, web1)
		mallory.csrf("/login") // has a CSRF cookie of its own
		tests := []struct {
			name string
			b    *browser
			path string
			form url.Values
		}{
			{"post without token", bob, "/posts", url.Values{"body": {"x"}}},
			{"post with empty token", bob, "/posts", url.Values{"body": {"x"}, "csrf_token": {""}}},
			{"post with another session's token", bob, "/posts", url.Values{"body": {"x"}, "csrf_token": {aliceTok}}},
			{"logout without token", bob, "/logout", url.Values{}},
			{"login without cookie", newBrowser(t, web1), "/login", url.Values{"name": {"bob"}, "password": {"hunter2hunter2"}, "csrf_token": {loginTok}}},
			{"signup with another browser's token", mallory, "/signup", url.Values{"name": {"mallory"}, "password": {"12345678"}, "csrf_token": {loginTok}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				expect(t, tt.name, tt.b.post(tt.path, tt.form), http.StatusForbidden, "expired")
			})
		}
		// Nothing was posted, and bob is still logged in.
		r := bob.get(bobPage)
		expect(t, "bob's page", r, http.StatusOK, `action="/posts"`, "No posts yet")
	})

	t.Run("validation", func(t *testing.T) {
		b := newBrowser(t, web1)
		tests := []struct {
			name, user, password string
			status               int
			msg                  string
		}{
			{"short name", "al", "12345678", http.StatusUnprocessableEntity, msgNameLength},
			{"bad characters", "al ice", "12345678", http.StatusUnprocessableEntity, msgNameChars},
			{"short password", "carol", "1234", http.StatusUnprocessableEntity, "8 to 128 characters"},
			{"name taken", "ALICE", "12345678", http.StatusConflict, msgNameTaken},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.post("/signup", url.Values{"name": {tt.user}, "password": {tt.password}, "csrf_token": {b.csrf("/login")}})
				expect(t, tt.name, r, tt.status, tt.msg)
			})
		}
		posts := []struct {
			name, body, msg string
		}{
			{"empty post", "  \n ", msgPostEmpty},
			{"long post", strings.Repeat("y", maxPostLen+1), "at most 500 characters"},
			{"control character", "a\x00b", "without control characters"},
		}
		for _, tt := range posts {
			t.Run(tt.name, func(t *testing.T) {
				expect(t, tt.name, alice.postText(alicePage, tt.body), http.StatusUnprocessableEntity, tt.msg)
			})
		}
		anon := newBrowser(t, web1)
		expect(t, "post while logged out", anon.post("/posts", url.Values{"body": {"x"}}), http.StatusUnauthorized)
	})

	t.Run("feed shows the newest 50 across users", func(t *testing.T) {
		carol := newBrowser(t, web2)
		carolPage := carol.signup("carol", "12345678")
		for i := range feedLimit + 5 {
			if r := carol.postText(carolPage, fmt.Sprintf("carol post %03d", i)); r.status != http.StatusSeeOther {
				t.Fatalf("post %d: %d\n%s", i, r.status, r.body)
			}
		}
		body := newBrowser(t, web1).get("/").body
		if n := strings.Count(body, `<li class="post">`); n != feedLimit {
			t.Fatalf("feed has %d posts, want %d", n, feedLimit)
		}
		newest, oldestShown := strings.Index(body, "carol post 054"), strings.Index(body, "carol post 005")
		if newest < 0 || oldestShown < 0 || newest > oldestShown {
			t.Fatalf("feed order: newest at %d, 50th at %d", newest, oldestShown)
		}
		if strings.Contains(body, "carol post 004") || strings.Contains(body, "hello from") {
			t.Fatal("feed shows more than the newest 50 posts")
		}
	})

	t.Run("logout", func(t *testing.T) {
		dave := newBrowser(t, web1)
		davePage := dave.signup("dave", "12345678")
		on2 := dave.at(web2) // a copy of the cookie, as a second tab would send it
		r := dave.post("/logout", url.Values{"csrf_token": {dave.csrf(davePage)}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
			t.Fatalf("logout: %d %q", r.status, r.header.Get("Location"))
		}
		if dave.cookie(sessionCookie) != nil {
			t.Error("session cookie not cleared")
		}
		// The old cookie is dead everywhere, not just forgotten by one browser.
		r = on2.get("/me")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
			t.Fatalf("old session on web2: %d %q", r.status, r.header.Get("Location"))
		}
	})

	t.Run("pages", func(t *testing.T) {
		b := newBrowser(t, web1)
		tests := []struct {
			path   string
			status int
		}{
			{"/u/abc", http.StatusNotFound},
			{"/u/-1", http.StatusNotFound},
			{"/u/1", http.StatusNotFound},
			{"/nope", http.StatusNotFound},
			{"/me", http.StatusSeeOther},
			{"/login", http.StatusOK},
			{"/healthz", http.StatusOK},
		}
		for _, tt := range tests {
			r := b.get(tt.path)
			if r.status != tt.status {
				t.Errorf("GET %s: %d, want %d", tt.path, r.status, tt.status)
			}
			if r.header.Get("X-Backend") != "web1" {
				t.Errorf("GET %s: no X-Backend header", tt.path)
			}
		}
		r := b.post("/", url.Values{})
		if r.status != http.StatusMethodNotAllowed {
			t.Errorf("POST /: %d", r.status)
		}
		// A forged session cookie is dropped, not trusted.
		u, _ := url.Parse(web1.URL)
		b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: strings.TrimPrefix(alicePage, "/u/") + "." + strings.Repeat("A", 43)}})
		if r := b.get(alicePage); strings.Contains(r.body, `action="/posts"`) {
			t.Fatal("a forged session token was accepted")
		}
		if b.cookie(sessionCookie) != nil {
			t.Error("the forged cookie was not deleted")
		}
	})

	t.Run("serve from flags", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		addr := make(chan string, 1)
		done := make(chan error, 1)
		f := flags{listen: "127.0.0.1:0", dsn: dsn, name: "web3", initDB: true, maxConns: 2}
		go func() { done <- serve(ctx, f, zaptest.NewLogger(t), func(a string) { addr <- a }) }()
		var base string
		select {
		case base = <-addr:
		case err := <-done:
			t.Fatalf("serve: %v", err)
		}
		resp, err := http.Get("http://" + base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "web3" {
			t.Fatalf("healthz: %d, X-Backend %q", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve after shutdown: %v", err)
		}
	})

	t.Run("static assets", func(t *testing.T) {
		b := newBrowser(t, web1)
		page := b.get("/login").body
		for _, re := range []string{`href="(/static/app\.[0-9a-f]{8}\.css)"`, `src="(/static/app\.[0-9a-f]{8}\.js)"`} {
			m := regexp.MustCompile(re).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("page does not reference %s", re)
			}
			r := b.get(m[1])
			if r.status != http.StatusOK || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
				t.Fatalf("GET %s: %d, Cache-Control %q", m[1], r.status, r.header.Get("Cache-Control"))
			}
		}
		if r := b.get("/static/app.css"); r.status != http.StatusNotFound {
			t.Errorf("unfingerprinted name served: %d", r.status)
		}
	})
}

// TestStaticOnlyWithFlag: without -serve-static the app leaves /static/ to
// the edge.
func TestStaticOnlyWithFlag(t *testing.T) {
	pool, err := newConnPool("postgres://127.0.0.1:1/none", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.close()
	cfg := appConfig{PasswordIterations: testIterations}
	cfg.SetDefaults()
	a, err := newApp(cfg, pool, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		t.Fatal(err)
	}
	static, err := assetNames(sub)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, static["app.css"], nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("GET %s without -serve-static: %d", static["app.css"], rec.Code)
	}
}

// TestHealthz: /healthz follows the database down and back up, and schema
// application survives instances racing on a fresh database.
func TestHealthz(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t, pgtest.Spec{Name: "webhealth"})
	node := db.Primary()
	dsn := node.DSN()

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			pool, err := newConnPool(dsn, 1)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = (&store{pool: pool}).initSchema(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}

	web := startApp(t, dsn, "web1")
	b := newBrowser(t, web)
	expect(t, "healthy", b.get("/healthz"), http.StatusOK, "ok")
	// Warm the pool, so the check must notice broken connections too.
	expect(t, "feed", b.get("/"), http.StatusOK)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, b, http.StatusServiceUnavailable)
	if r := b.get("/"); r.status != http.StatusServiceUnavailable || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("feed while the database is down: %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, b, http.StatusOK)
	expect(t, "feed after restart", b.get("/"), http.StatusOK)
}

// waitHealth polls /healthz until it answers want, for up to 15 seconds.
func waitHealth(t *testing.T, b *browser, want int) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last := b.get("/healthz")
		if last.status == want {
			if last.header.Get("Cache-Control") != "no-store" {
				t.Errorf("/healthz Cache-Control %q", last.header.Get("Cache-Control"))
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("/healthz stayed %d (%s), want %d", last.status, strings.TrimSpace(last.body), want)
		}
	}
}
