package health

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrStatusRange is wrapped by ParseStatusRange errors.
var ErrStatusRange = errors.New("invalid status range")

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	Lo, Hi int
}

// Contains reports whether code is in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Lo && code <= r.Hi }

// String formats the range the way ParseStatusRange reads it.
func (r StatusRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
}

// ParseStatusRange reads "200", "200-399" or "2xx". Codes are 100..599.
func ParseStatusRange(s string) (StatusRange, error) {
	s = strings.TrimSpace(s)
	if len(s) == 3 && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') {
		if s[0] < '1' || s[0] > '5' {
			return StatusRange{}, fmt.Errorf("%w: %q: class must be 1xx..5xx", ErrStatusRange, s)
		}
		lo := int(s[0]-'0') * 100
		return StatusRange{lo, lo + 99}, nil
	}
	los, his, isRange := strings.Cut(s, "-")
	lo, err := parseCode(los)
	if err != nil {
		return StatusRange{}, fmt.Errorf("%w: %q: %v", ErrStatusRange, s, err)
	}
	hi := lo
	if isRange {
		if hi, err = parseCode(his); err != nil {
			return StatusRange{}, fmt.Errorf("%w: %q: %v", ErrStatusRange, s, err)
		}
		if hi < lo {
			return StatusRange{}, fmt.Errorf("%w: %q: %d is below %d", ErrStatusRange, s, hi, lo)
		}
	}
	return StatusRange{lo, hi}, nil
}

func parseCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 3 {
		return 0, fmt.Errorf("want a 3-digit status code, got %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("want a status code 100..599, got %q", s)
	}
	return n, nil
}

// StatusRanges is a set of passing status codes.
type StatusRanges []StatusRange

// ParseStatusRanges parses every entry (see ParseStatusRange); an empty list
// yields nil.
func ParseStatusRanges(list []string) (StatusRanges, error) {
	var out StatusRanges
	for _, s := range list {
		r, err := ParseStatusRange(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Contains reports whether code is in any of the ranges.
func (rs StatusRanges) Contains(code int) bool {
	for _, r := range rs {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

// String joins the ranges with commas.
func (rs StatusRanges) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
