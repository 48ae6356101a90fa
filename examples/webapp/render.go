package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Page template names: each is parsed together with layout.html.
const (
	pageFeed  = "feed.html"
	pageUser  = "user.html"
	pageLogin = "login.html"
	pageError = "error.html"
)

// page is what the layout needs. Viewer is nil on public pages (the feed),
// which must render the same for everyone because the edge caches them.
type page struct {
	Title  string
	Viewer *user
	CSRF   string // form token for the viewer's session (logout form)
}

type feedPage struct {
	page
	Posts []post
	Limit int
}

type userPage struct {
	page
	Profile user
	Posts   []post
	Own     bool   // the viewer is this user: show the post form
	Body    string // post text to refill after a validation error
	Error   string
	MaxPost int
}

type loginPage struct {
	page
	LoginName     string
	LoginError    string
	SignupName    string
	NameError     string
	PasswordError string
}

type errorPage struct {
	page
	Message string
}

// parsePages parses every page with the layout; asset resolves a logical
// static name to its fingerprinted path.
func parsePages(assets map[string]string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset": func(name string) (string, error) {
			p, ok := assets[name]
			if !ok {
				return "", fmt.Errorf("no static asset %q", name)
			}
			return p, nil
		},
		"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}
	pages := make(map[string]*template.Template)
	for _, name := range []string{pageFeed, pageUser, pageLogin, pageError} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (a *app) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.Error("render", zap.String("template", name), zap.Error(err))
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a short error page that is never cached.
func (a *app) renderError(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	a.render(w, status, pageError, errorPage{page: page{Title: title}, Message: msg})
}
