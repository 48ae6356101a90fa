package pgproxy

import (
	"fmt"
	"math"
	"math/big"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tiergate/tiergate/router/sqlroute"
)

func TestNumericDiv(t *testing.T) {
	// Expected values as PostgreSQL 15 prints sum::numeric / count
	// (numeric_div, avg's final step), checked against a server.
	tests := []struct {
		sum   string
		count int64
		want  string
	}{
		{"10", 4, "2.5000000000000000"},
		{"3", 2, "1.5000000000000000"},
		{"30000", 2, "15000.000000000000"},
		{"1", 3, "0.33333333333333333333"},
		{"2", 3, "0.66666666666666666667"},
		{"-2", 3, "-0.66666666666666666667"},
		{"7.50", 2, "3.7500000000000000"},
		{"100000000", 7, "14285714.285714285714"},
		{"0", 5, "0.00000000000000000000"},
		{"123456789012345678901234", 1, "123456789012345678901234"},
	}
	for _, tc := range tests {
		a, err := decodeNumeric(0, []byte(tc.sum))
		if err != nil {
			t.Fatal(err)
		}
		got := numericDiv(a, decimal{v: big.NewInt(tc.count)}).String()
		if got != tc.want {
			t.Errorf("%s / %d = %s, want %s", tc.sum, tc.count, got, tc.want)
		}
	}
}

func TestNumericBinaryRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "1.5", "12345.678", "0.0001", "10000", "99999999.99999999", "-0.00000123", "1.000"} {
		d, err := decodeNumeric(0, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		b := d.appendBinary(nil)
		// pgx must read it back as the same number.
		var n pgtype.Numeric
		if err := pgTypes.Scan(oidNumeric, 1, b, &n); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		text, err := n.Value()
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeNumeric(0, []byte(text.(string)))
		if err != nil || back.cmp(d) != 0 {
			t.Errorf("%s: binary %x read back as %v", s, b, text)
		}
		d2, err := decodeNumericBinary(b)
		if err != nil || d2.String() != d.String() {
			t.Errorf("%s: decodeNumericBinary = %s %v", s, d2.String(), err)
		}
	}
}

var point1, point2 = 0.1, 0.2

func TestFormatFloatPG(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{1.5, "1.5"}, {1234567, "1234567"}, {1e20, "1e+20"}, {0.0001, "0.0001"}, {1e-05, "1e-05"},
		{123456789012345, "123456789012345"}, {1e15, "1e+15"}, {-0.5, "-0.5"}, {math.NaN(), "NaN"},
		{math.Inf(-1), "-Infinity"}, {point1 + point2, "0.30000000000000004"},
	}
	for _, tc := range tests {
		if got := formatFloat8(tc.f); got != tc.want {
			t.Errorf("formatFloat8(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	// float4 (checked against PostgreSQL 15).
	for f, want := range map[float32]string{1234567: "1.234567e+06", 123456: "123456", 0.0001: "0.0001"} {
		if got := formatFloat4(f); got != want {
			t.Errorf("formatFloat4(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestCompareValues(t *testing.T) {
	tests := []struct {
		oid    uint32
		format int16
		a, b   string
		want   int
	}{
		{oidInt4, 0, "9", "10", -1},
		{oidNumeric, 0, "1.50", "1.5", 0},
		{oidNumeric, 0, "-2", "1.5", -1},
		{oidNumeric, 0, "NaN", "1000", 1},
		{oidFloat8, 0, "NaN", "Infinity", 1},
		{oidText, 0, "B", "a", -1},
		{oidBPChar, 0, "a  ", "a", 0},
		{oidTimestamptz, 0, "2024-01-02 03:04:05+00", "2024-01-02 03:04:05.5+00", -1},
		{oidDate, 0, "infinity", "2024-01-01", 1},
		{oidBool, 0, "f", "t", -1},
	}
	for _, tc := range tests {
		got, err := compareValues(tc.oid, tc.format, []byte(tc.a), []byte(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("compare(%d, %q, %q) = %d %v, want %d", tc.oid, tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := compareValues(1186, 0, []byte("1 day"), []byte("2 days")); err == nil {
		t.Error("interval compared")
	}
}

func TestShardErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("%w: x", errUnmergeable), "0A000"},
		{fmt.Errorf("%w: x", sqlroute.ErrCrossShard), "0A000"},
		{fmt.Errorf("%w: x", sqlroute.ErrShardKey), "22023"},
		{errTxAborted, "25P02"},
		{errMultiShardTx, "0A000"},
	} {
		if got := asQueryError(shardError(tc.err)).Code; got != tc.code {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.code)
		}
	}
}
