package health

import (
	"errors"
	"testing"
)

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in      string
		want    StatusRange
		wantErr bool
	}{
		{in: "200", want: StatusRange{200, 200}},
		{in: " 204 ", want: StatusRange{204, 204}},
		{in: "200-399", want: StatusRange{200, 399}},
		{in: "200 - 299", want: StatusRange{200, 299}},
		{in: "2xx", want: StatusRange{200, 299}},
		{in: "5XX", want: StatusRange{500, 599}},
		{in: "100-599", want: StatusRange{100, 599}},
		{in: "", wantErr: true},
		{in: "99", wantErr: true},
		{in: "600", wantErr: true},
		{in: "2000", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "+20", wantErr: true},
		{in: "300-200", wantErr: true},
		{in: "200-", wantErr: true},
		{in: "-200", wantErr: true},
		{in: "200-300-400", wantErr: true},
		{in: "0xx", wantErr: true},
		{in: "6xx", wantErr: true},
		{in: "2x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseStatusRange(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrStatusRange) {
					t.Fatalf("ParseStatusRange(%q) = %v, %v; want an ErrStatusRange", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseStatusRange(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestStatusRangesContains(t *testing.T) {
	rs, err := ParseStatusRanges([]string{"200", "204-206", "4xx"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.String(); got != "200,204-206,400-499" {
		t.Errorf("String = %q", got)
	}
	for code, want := range map[int]bool{199: false, 200: true, 201: false, 204: true, 206: true, 207: false,
		400: true, 499: true, 500: false} {
		if rs.Contains(code) != want {
			t.Errorf("Contains(%d) = %v, want %v", code, !want, want)
		}
	}
	if _, err := ParseStatusRanges([]string{"200", "bad"}); err == nil {
		t.Error("ParseStatusRanges with a bad entry = nil error")
	}
}

// FuzzParseStatusRange: whatever parses must round-trip through String and
// stay within 100..599 with Lo <= Hi.
func FuzzParseStatusRange(f *testing.F) {
	for _, s := range []string{"200", "200-399", "2xx", "5XX", "99", "300-200", " 204 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseStatusRange(s)
		if err != nil {
			if !errors.Is(err, ErrStatusRange) {
				t.Fatalf("error %v does not wrap ErrStatusRange", err)
			}
			return
		}
		if r.Lo < 100 || r.Hi > 599 || r.Lo > r.Hi {
			t.Fatalf("ParseStatusRange(%q) = %v: out of bounds", s, r)
		}
		back, err := ParseStatusRange(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, r, r.String(), back, err)
		}
	})
}
