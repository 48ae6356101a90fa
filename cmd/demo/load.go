package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"
)

// drive sends steady, bounded traffic through the edge until ctx ends:
// about 20 requests a second, mixing feed reads (a third of them with a
// tracking parameter the edge's cache cannot absorb), logins and posts.
func (d *demo) drive(ctx context.Context) {
	base := "http://" + d.edge.addr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	name := fmt.Sprintf("loadbot%d", rand.IntN(1_000_000))
	csrf := func(page string) string {
		resp, err := c.Get(base + page)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		s := string(b)
		i := strings.Index(s, `name="csrf_token" value="`)
		if i < 0 {
			return ""
		}
		s = s[i+len(`name="csrf_token" value="`):]
		return s[:strings.IndexByte(s, '"')]
	}
	post := func(path string, form url.Values) {
		resp, err := c.PostForm(base+path, form)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	post("/signup", url.Values{"name": {name}, "password": {"loadbot-password"}, "csrf_token": {csrf("/login")}})
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch {
		case n%40 == 0:
			post("/posts", url.Values{"body": {fmt.Sprintf("post %d from %s", n, name)}, "csrf_token": {csrf("/me")}})
		default:
			page := base + "/"
			if n%3 == 1 {
				// A link with a tracking parameter: every URL is its own
				// entry in the edge's cache, so these reach a web server,
				// whose feed query dbproxy answers from its query cache
				// until the next post drops it.
				page += fmt.Sprintf("?utm_source=demo&n=%d", n)
			}
			resp, err := c.Get(page)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}
