package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Messages shown to the user.
const (
	msgWrongLogin = "Wrong user name or password."
	msgNameTaken  = "That user name is taken."
	msgCSRF       = "This form has expired or was not sent from this site. Reload the page and try again."
	msgBadForm    = "The form could not be read."
)

// feed is the public front page: the latest posts of every user. It renders
// the same bytes for every visitor (no viewer, no cookies), so the edge may
// cache it.
func (a *app) feed(w http.ResponseWriter, r *http.Request) {
	posts, err := a.db.feed(r.Context())
	if err != nil {
		a.dbFailed(w, r, "feed", err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=5")
	a.render(w, http.StatusOK, pageFeed, feedPage{page: page{Title: "Feed"}, Posts: posts, Limit: feedLimit})
}

// viewer returns the logged-in user and their session key; ok is false for an
// anonymous request. A stale or malformed session cookie is deleted.
func (a *app) viewer(w http.ResponseWriter, r *http.Request) (u user, k sessionKey, ok bool, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return user{}, sessionKey{}, false, nil
	}
	k, valid := parseSessionKey(c.Value)
	if !valid {
		setCookie(w, r, sessionCookie, "", -1)
		return user{}, sessionKey{}, false, nil
	}
	u, err = a.db.sessionUser(r.Context(), k)
	if errors.Is(err, errNotFound) {
		setCookie(w, r, sessionCookie, "", -1)
		return user{}, sessionKey{}, false, nil
	}
	if err != nil {
		return user{}, sessionKey{}, false, err
	}
	return u, k, true, nil
}

// userPage shows a user's posts, with the post form when it is the viewer's
// own page.
func (a *app) userPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.renderError(w, http.StatusNotFound, "No such user", "User ids are positive numbers.")
		return
	}
	v, k, ok, err := a.viewer(w, r)
	if err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	var viewer *user
	if ok {
		viewer = &v
	}
	a.showUser(w, r, http.StatusOK, id, viewer, k, "", "")
}

// showUser renders a user page; body and msg refill the post form after a
// validation error.
func (a *app) showUser(w http.ResponseWriter, r *http.Request, status int, id int64, viewer *user, k sessionKey, body, msg string) {
	profile, err := a.db.user(r.Context(), id)
	if errors.Is(err, errNotFound) {
		a.renderError(w, http.StatusNotFound, "No such user", "There is no user with that id.")
		return
	}
	if err != nil {
		a.dbFailed(w, r, "user", err)
		return
	}
	posts, err := a.db.userPosts(r.Context(), id)
	if err != nil {
		a.dbFailed(w, r, "posts", err)
		return
	}
	p := userPage{
		page:    page{Title: "@" + profile.Name, Viewer: viewer},
		Profile: profile,
		Posts:   posts,
		Body:    body,
		Error:   msg,
		MaxPost: maxPostLen,
	}
	if viewer != nil {
		p.CSRF = k.csrfToken()
		p.Own = viewer.ID == id
	}
	// The page depends on the session cookie: never shared by a cache.
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Header().Set("Vary", "Cookie")
	a.render(w, status, pageUser, p)
}

// me redirects to the viewer's page, or to the login form.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	v, _, ok, err := a.viewer(w, r)
	if err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/u/"+strconv.FormatInt(v.ID, 10), http.StatusSeeOther)
}

// loginForm shows the login and signup forms. Before login there is no
// session to tie a CSRF token to, so the forms use a double-submit cookie: a
// random token in an HttpOnly cookie that the form must repeat.
func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	v, _, ok, err := a.viewer(w, r)
	if err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	if ok {
		http.Redirect(w, r, "/u/"+strconv.FormatInt(v.ID, 10), http.StatusSeeOther)
		return
	}
	tok := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == b64url.EncodedLen(tokenLen) {
		tok = c.Value
	} else {
		if tok, err = randomToken(); err != nil {
			a.internalError(w, "csrf token", err)
			return
		}
		setCookie(w, r, csrfCookie, tok, 0)
	}
	a.render(w, http.StatusOK, pageLogin, loginPage{page: page{Title: "Log in", CSRF: tok}})
}

// anonCSRF checks the double-submit token of a form posted before login.
func anonCSRF(r *http.Request) (token string, ok bool) {
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return "", false
	}
	return c.Value, tokensEqual(r.PostFormValue(csrfField), c.Value)
}

func (a *app) csrfFailed(w http.ResponseWriter) {
	a.renderError(w, http.StatusForbidden, "Form expired", msgCSRF)
}

func (a *app) internalError(w http.ResponseWriter, what string, err error) {
	a.log.Error("internal", zap.String("op", what), zap.Error(err))
	a.renderError(w, http.StatusInternalServerError, "Internal error", "Something went wrong on our side.")
}

// parseForm reads a POST form; false means the response is already written.
func (a *app) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.renderError(w, http.StatusRequestEntityTooLarge, "Too large", "The form is too large.")
			return false
		}
		a.renderError(w, http.StatusBadRequest, "Bad request", msgBadForm)
		return false
	}
	return true
}

// signup creates a user and logs them in.
func (a *app) signup(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	tok, ok := anonCSRF(r)
	if !ok {
		a.csrfFailed(w)
		return
	}
	name, nameMsg := cleanName(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	passMsg := checkNewPassword(password)
	form := loginPage{page: page{Title: "Sign up"}, SignupName: name, NameError: nameMsg, PasswordError: passMsg}
	form.CSRF = tok
	if nameMsg != "" || passMsg != "" {
		a.render(w, http.StatusUnprocessableEntity, pageLogin, form)
		return
	}
	hash, err := hashPassword(password, a.cfg.PasswordIterations)
	if err != nil {
		a.internalError(w, "hash password", err)
		return
	}
	id, err := newID()
	if err != nil {
		a.internalError(w, "user id", err)
		return
	}
	err = a.db.createUser(r.Context(), id, name, hash)
	if errors.Is(err, errNameTaken) {
		form.NameError = msgNameTaken
		a.render(w, http.StatusConflict, pageLogin, form)
		return
	}
	if err != nil {
		a.dbFailed(w, r, "signup", err)
		return
	}
	a.startSession(w, r, id)
}

// login checks a name and password and starts a session. A missing user
// costs the same hash as a wrong password, so timing does not reveal which
// names exist.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	tok, ok := anonCSRF(r)
	if !ok {
		a.csrfFailed(w)
		return
	}
	name, nameMsg := cleanName(r.PostFormValue("name"))
	var id int64
	stored := a.dummyHash
	if nameMsg == "" {
		uid, err := a.db.userIDByName(r.Context(), name)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			a.dbFailed(w, r, "login", err)
			return
		default:
			h, err := a.db.passwordHash(r.Context(), uid)
			switch {
			case errors.Is(err, errNotFound): // name claimed by a signup that failed halfway
			case err != nil:
				a.dbFailed(w, r, "login", err)
				return
			default:
				id, stored = uid, h
			}
		}
	}
	match, err := checkPassword(stored, r.PostFormValue("password"))
	if err != nil {
		a.internalError(w, "check password", err)
		return
	}
	if id == 0 || !match {
		form := loginPage{page: page{Title: "Log in"}, LoginName: name, LoginError: msgWrongLogin}
		form.CSRF = tok
		a.render(w, http.StatusUnauthorized, pageLogin, form)
		return
	}
	a.startSession(w, r, id)
}

// startSession stores a new session for id, sets its cookie and sends the
// user to their page.
func (a *app) startSession(w http.ResponseWriter, r *http.Request, id int64) {
	k, err := newSessionKey(id)
	if err != nil {
		a.internalError(w, "session token", err)
		return
	}
	if err := a.db.createSession(r.Context(), k, time.Now().Add(a.cfg.SessionTTL)); err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	setCookie(w, r, sessionCookie, k.String(), a.cfg.SessionTTL)
	setCookie(w, r, csrfCookie, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/u/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// logout ends the viewer's session.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	_, k, ok, err := a.viewer(w, r)
	if err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	if ok {
		if !tokensEqual(r.PostFormValue(csrfField), k.csrfToken()) {
			a.csrfFailed(w)
			return
		}
		if err := a.db.deleteSession(r.Context(), k); err != nil {
			a.dbFailed(w, r, "logout", err)
			return
		}
		setCookie(w, r, sessionCookie, "", -1)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// createPost adds a post for the viewer.
func (a *app) createPost(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	v, k, ok, err := a.viewer(w, r)
	if err != nil {
		a.dbFailed(w, r, "session", err)
		return
	}
	if !ok {
		a.renderError(w, http.StatusUnauthorized, "Log in first", "Log in to post.")
		return
	}
	if !tokensEqual(r.PostFormValue(csrfField), k.csrfToken()) {
		a.csrfFailed(w)
		return
	}
	body, msg := cleanPost(r.PostFormValue("body"))
	if msg != "" {
		a.showUser(w, r, http.StatusUnprocessableEntity, v.ID, &v, k, body, msg)
		return
	}
	pid, err := newID()
	if err != nil {
		a.internalError(w, "post id", err)
		return
	}
	if err := a.db.createPost(r.Context(), post{UserID: v.ID, PostID: pid, Author: v.Name, Body: body}); err != nil {
		a.dbFailed(w, r, "post", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/u/"+strconv.FormatInt(v.ID, 10), http.StatusSeeOther)
}

// healthz answers 200 when the database answers a query within
// HealthTimeout, else 503: the edge's active health check.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.HealthTimeout)
	defer cancel()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if err := a.db.ping(ctx); err != nil {
		a.log.Warn("health check failed", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("database unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
