package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestAppConfig(t *testing.T) {
	var c appConfig
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.Name != "web1" || c.PasswordIterations != DefaultPasswordIterations || c.HealthTimeout != time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	tests := []struct {
		name string
		edit func(*appConfig)
		want string
	}{
		{"iterations", func(c *appConfig) { c.PasswordIterations = -1 }, "password_iterations: -1 is not in"},
		{"ttl", func(c *appConfig) { c.SessionTTL = time.Second }, "session_ttl: 1s is shorter"},
		{"db timeout", func(c *appConfig) { c.DBTimeout = -time.Second }, "db_timeout"},
		{"health timeout", func(c *appConfig) { c.HealthTimeout = -1 }, "health_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := appConfig{}
			c.SetDefaults()
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://from-env/db")
	tests := []struct {
		name    string
		args    []string
		want    flags
		wantErr string
	}{
		{"defaults", nil, flags{listen: "127.0.0.1:8081", dsn: "postgres://from-env/db", name: "web1", maxConns: 10}, ""},
		{"all", []string{"-listen", "127.0.0.1:9000", "-db", "postgres://x/y", "-name", "web3", "-init-db", "-serve-static", "-max-conns", "3"},
			flags{listen: "127.0.0.1:9000", dsn: "postgres://x/y", name: "web3", initDB: true, serveStatic: true, maxConns: 3}, ""},
		{"no db", []string{"-db", ""}, flags{}, "no database"},
		{"stray arg", []string{"extra"}, flags{}, "unexpected arguments"},
		{"unknown flag", []string{"-nope"}, flags{}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseFlags = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
