package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed schema.sql
var schemaSQL string

// feedLimit is how many posts the feed and a user page show. It is written
// into the SQL text as a literal so dbproxy's fan-out sees a plain LIMIT.
const feedLimit = 50

var (
	// errNameTaken means signup lost the race for a user name.
	errNameTaken = errors.New("user name is taken")
	// errNotFound means no such user, or no live session.
	errNotFound = errors.New("not found")
)

// SQLSTATE codes the store tells apart.
const (
	sqlstateUniqueViolation = "23505"
	sqlstateDuplicateTable  = "42P07"
)

type user struct {
	ID      int64
	Name    string
	Created time.Time
}

type post struct {
	UserID  int64
	PostID  int64
	Author  string
	Body    string
	Created time.Time
}

// store holds every SQL statement of the app. Each method is one or two
// single statements, never a multi-statement transaction, and each
// user-scoped statement has "user_id = $1" in its WHERE clause (see
// schema.sql for why).
type store struct {
	pool *connPool
}

// initSchema applies schema.sql. Instances started together may race on
// CREATE ... IF NOT EXISTS (the catalog's unique index catches the loser), so
// a duplicate error is retried.
func (s *store) initSchema(ctx context.Context) error {
	var err error
	for range 3 {
		err = s.pool.with(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, schemaSQL)
			return err
		})
		if !isSQLState(err, sqlstateUniqueViolation, sqlstateDuplicateTable) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("apply schema: %w", err)
	}
	return nil
}

// ping checks that the database answers a query.
func (s *store) ping(ctx context.Context) error {
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one)
	})
}

// createUser claims name in the usernames reference table, then inserts the
// user on its shard. If the second insert fails the claim is withdrawn, so a
// failed signup does not burn the name.
func (s *store) createUser(ctx context.Context, id int64, name, passwordHash string) error {
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO usernames (name, user_id) VALUES ($1, $2)", name, id)
		return err
	})
	if isSQLState(err, sqlstateUniqueViolation) {
		return errNameTaken
	}
	if err != nil {
		return fmt.Errorf("claim user name: %w", err)
	}
	err = s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)", id, name, passwordHash)
		return err
	})
	if err == nil {
		return nil
	}
	undo := context.WithoutCancel(ctx)
	if uerr := s.pool.with(undo, func(c *pgx.Conn) error {
		_, err := c.Exec(undo, "DELETE FROM usernames WHERE name = $1 AND user_id = $2", name, id)
		return err
	}); uerr != nil {
		return fmt.Errorf("insert user: %w (and releasing the name failed: %w)", err, uerr)
	}
	return fmt.Errorf("insert user: %w", err)
}

// primaryHint sends a read to the primary through dbproxy (a comment, so
// plain PostgreSQL ignores it). The web tier is stateless: a user may sign
// up through one instance and log in, or see their new post, through
// another, whose database connection never saw the write. dbproxy's
// read-your-writes covers one connection; reads that must see the user's
// own recent writes (logins, sessions, the user's page) therefore go to
// the primary, and only the public feed, where a second of staleness is
// fine (the edge caches it anyway), is read from replicas.
const primaryHint = "/* tiergate: primary */ "

// userIDByName looks a name up in the reference table.
func (s *store) userIDByName(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, primaryHint+"SELECT user_id FROM usernames WHERE name = $1", name).Scan(&id)
	})
	return id, notFound(err)
}

// passwordHash returns the stored password hash of a user.
func (s *store) passwordHash(ctx context.Context, id int64) (string, error) {
	var h string
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, primaryHint+"SELECT password_hash FROM users WHERE user_id = $1", id).Scan(&h)
	})
	return h, notFound(err)
}

// user returns a user by id.
func (s *store) user(ctx context.Context, id int64) (user, error) {
	u := user{ID: id}
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, primaryHint+"SELECT name, created_at FROM users WHERE user_id = $1", id).Scan(&u.Name, &u.Created)
	})
	return u, notFound(err)
}

// createSession stores a session and drops the user's expired ones.
func (s *store) createSession(ctx context.Context, k sessionKey, expires time.Time) error {
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()", k.UserID); err != nil {
			return fmt.Errorf("drop expired sessions: %w", err)
		}
		_, err := c.Exec(ctx, "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3)", k.UserID, k.hash(), expires)
		return err
	})
}

// sessionUser returns the user of a live session, or errNotFound. Sessions and
// users share the shard key, so the join stays on one shard.
func (s *store) sessionUser(ctx context.Context, k sessionKey) (user, error) {
	u := user{ID: k.UserID}
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, primaryHint+`SELECT u.name, u.created_at
FROM sessions s JOIN users u ON u.user_id = s.user_id
WHERE s.user_id = $1 AND u.user_id = $1 AND s.token_hash = $2 AND s.expires_at > now()`,
			k.UserID, k.hash()).Scan(&u.Name, &u.Created)
	})
	return u, notFound(err)
}

// deleteSession ends a session.
func (s *store) deleteSession(ctx context.Context, k sessionKey) error {
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1 AND token_hash = $2", k.UserID, k.hash())
		return err
	})
}

// createPost inserts a post on its author's shard.
func (s *store) createPost(ctx context.Context, p post) error {
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO posts (user_id, post_id, author, body) VALUES ($1, $2, $3, $4)",
			p.UserID, p.PostID, p.Author, p.Body)
		return err
	})
}

// userPosts returns a user's newest posts (one shard).
func (s *store) userPosts(ctx context.Context, id int64) ([]post, error) {
	return s.posts(ctx, primaryHint+"SELECT user_id, post_id, author, body, created_at FROM posts WHERE user_id = $1 ORDER BY created_at DESC LIMIT "+strconv.Itoa(feedLimit), id)
}

// feed returns the newest posts of all users: the one cross-shard query,
// which dbproxy fans out to every shard and merges by created_at.
func (s *store) feed(ctx context.Context) ([]post, error) {
	return s.posts(ctx, "SELECT user_id, post_id, author, body, created_at FROM posts ORDER BY created_at DESC LIMIT "+strconv.Itoa(feedLimit))
}

func (s *store) posts(ctx context.Context, sql string, args ...any) ([]post, error) {
	var out []post
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		out = out[:0]
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p post
			if err := rows.Scan(&p.UserID, &p.PostID, &p.Author, &p.Body, &p.Created); err != nil {
				return err
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	return out, err
}

// notFound maps "no rows" to errNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound
	}
	return err
}

func isSQLState(err error, codes ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	for _, c := range codes {
		if pe.Code == c {
			return true
		}
	}
	return false
}
