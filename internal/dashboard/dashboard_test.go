package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPages: each page is served whole with the shared polling script in
// place of its marker, and only at "/".
func TestPages(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"edge", Edge()}, {"dbproxy", DBProxy()}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			body, _ := io.ReadAll(rec.Body)
			page := string(body)
			switch {
			case rec.Code != http.StatusOK:
				t.Fatalf("status %d", rec.Code)
			case strings.Contains(page, string(pollMarker)):
				t.Fatal("marker left in the page")
			case !strings.Contains(page, "async function tick()") || !strings.Contains(page, "function render("):
				t.Fatal("page lacks the polling script or its render function")
			case !strings.HasSuffix(strings.TrimSpace(page), "</html>"):
				t.Fatal("page truncated")
			}
			rec = httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest("GET", "/other", nil))
			if rec.Code != http.StatusNotFound {
				t.Fatalf("/other: status %d", rec.Code)
			}
		})
	}
}
