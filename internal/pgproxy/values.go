package pgproxy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Typed handling of result values for the fan-out merger: comparing them
// (ORDER BY, min, max), grouping them (GROUP BY, DISTINCT) and adding them
// up (count, sum, avg), in the text or binary wire format a column came in.
// Text sorts byte by byte, which is PostgreSQL's order under the C
// collation only.

// PostgreSQL type OIDs the merger knows.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
)

// errUnmergeable: a column of a type the merger cannot compare or add.
var errUnmergeable = errors.New("cannot merge values of this type across shards")

// pgTypes decodes the date and time text forms (ISO DateStyle).
var pgTypes = pgtype.NewMap()

// sortKey is a value decoded for ordering.
type sortKeyVal struct {
	kind int // 0 int, 1 float, 2 bytes, 3 decimal
	i    int64
	f    float64
	b    []byte
	d    decimal
}

// decodeSortKey decodes a non-NULL value of type oid for comparisons.
func decodeSortKey(oid uint32, format int16, v []byte) (sortKeyVal, error) {
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID:
		n, err := decodeInt(oid, format, v)
		return sortKeyVal{kind: 0, i: n}, err
	case oidFloat4, oidFloat8:
		f, err := decodeFloat(oid, format, v)
		return sortKeyVal{kind: 1, f: f}, err
	case oidNumeric:
		d, err := decodeNumeric(format, v)
		return sortKeyVal{kind: 3, d: d}, err
	case oidText, oidVarchar, oidName, oidChar, oidUUID:
		if oid == oidUUID && format == 1 {
			return sortKeyVal{kind: 2, b: v}, nil
		}
		if oid == oidUUID {
			return sortKeyVal{kind: 2, b: bytes.ToLower(v)}, nil
		}
		return sortKeyVal{kind: 2, b: v}, nil
	case oidBPChar:
		return sortKeyVal{kind: 2, b: bytes.TrimRight(v, " ")}, nil
	case oidBool:
		if format == 1 {
			return sortKeyVal{i: int64(v[0])}, nil
		}
		if len(v) > 0 && v[0] == 't' {
			return sortKeyVal{i: 1}, nil
		}
		return sortKeyVal{}, nil
	case oidBytea:
		if format == 1 {
			return sortKeyVal{kind: 2, b: v}, nil
		}
		if !bytes.HasPrefix(v, []byte(`\x`)) {
			return sortKeyVal{}, fmt.Errorf("%w: bytea in escape format", errUnmergeable)
		}
		b := make([]byte, hex.DecodedLen(len(v)-2))
		_, err := hex.Decode(b, v[2:])
		return sortKeyVal{kind: 2, b: b}, err
	case oidDate, oidTimestamp, oidTimestamptz, oidTime:
		n, err := decodeTime(oid, format, v)
		return sortKeyVal{i: n}, err
	}
	return sortKeyVal{}, fmt.Errorf("%w: type OID %d", errUnmergeable, oid)
}

func compareSortKeys(a, b sortKeyVal) int {
	switch a.kind {
	case 0:
		return cmpInt(a.i, b.i)
	case 1:
		// NaN sorts above every other value, as in PostgreSQL.
		an, bn := math.IsNaN(a.f), math.IsNaN(b.f)
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		case a.f < b.f:
			return -1
		case a.f > b.f:
			return 1
		}
		return 0
	case 2:
		return bytes.Compare(a.b, b.b)
	}
	return a.d.cmp(b.d)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareValues compares two values of one column (NULL is nil).
func compareValues(oid uint32, format int16, a, b []byte) (int, error) {
	ka, err := decodeSortKey(oid, format, a)
	if err != nil {
		return 0, err
	}
	kb, err := decodeSortKey(oid, format, b)
	if err != nil {
		return 0, err
	}
	return compareSortKeys(ka, kb), nil
}

// groupKey is a value's identity for GROUP BY and DISTINCT: equal values
// get equal keys (1.0 and 1.00, -0 and 0, 'a ' and 'a' as char(n)).
func groupKey(oid uint32, format int16, v []byte, dst []byte) ([]byte, error) {
	if v == nil {
		return append(dst, 0), nil
	}
	dst = append(dst, 1)
	switch oid {
	case oidNumeric:
		d, err := decodeNumeric(format, v)
		if err != nil {
			return nil, err
		}
		return append(dst, d.normalString()...), nil
	case oidFloat4, oidFloat8:
		f, err := decodeFloat(oid, format, v)
		if err != nil {
			return nil, err
		}
		if f == 0 {
			f = 0 // -0 groups with 0
		}
		if math.IsNaN(f) {
			return append(dst, "NaN"...), nil
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case oidBPChar:
		return append(dst, bytes.TrimRight(v, " ")...), nil
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
	return append(dst, v...), nil
}

func decodeInt(oid uint32, format int16, v []byte) (int64, error) {
	if format == 0 {
		return strconv.ParseInt(string(v), 10, 64)
	}
	switch len(v) {
	case 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	case 4:
		if oid == oidOID {
			return int64(binary.BigEndian.Uint32(v)), nil
		}
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	}
	return 0, fmt.Errorf("bad binary integer of %d bytes", len(v))
}

func decodeFloat(oid uint32, format int16, v []byte) (float64, error) {
	if format == 0 {
		switch string(v) {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(string(v), 64)
	}
	switch len(v) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
	}
	return 0, fmt.Errorf("bad binary float of %d bytes", len(v))
}

// decodeTime returns microseconds (days for a date) for ordering;
// infinities map to the extremes.
func decodeTime(oid uint32, format int16, v []byte) (int64, error) {
	if format == 1 {
		switch oid {
		case oidDate:
			if len(v) != 4 {
				return 0, errors.New("bad binary date")
			}
			return int64(int32(binary.BigEndian.Uint32(v))), nil
		default:
			if len(v) != 8 {
				return 0, errors.New("bad binary time value")
			}
			return int64(binary.BigEndian.Uint64(v)), nil
		}
	}
	if oid == oidTime {
		t, err := time.Parse("15:04:05.999999", string(v))
		if err != nil {
			return 0, err
		}
		return int64(t.Hour())*3600e6 + int64(t.Minute())*60e6 + int64(t.Second())*1e6 + int64(t.Nanosecond()/1000), nil
	}
	var inf pgtype.InfinityModifier
	var tm time.Time
	switch oid {
	case oidDate:
		var d pgtype.Date
		if err := pgTypes.Scan(oid, 0, v, &d); err != nil {
			return 0, err
		}
		inf, tm = d.InfinityModifier, d.Time
	case oidTimestamp:
		var d pgtype.Timestamp
		if err := pgTypes.Scan(oid, 0, v, &d); err != nil {
			return 0, err
		}
		inf, tm = d.InfinityModifier, d.Time
	default:
		var d pgtype.Timestamptz
		if err := pgTypes.Scan(oid, 0, v, &d); err != nil {
			return 0, err
		}
		inf, tm = d.InfinityModifier, d.Time
	}
	switch inf {
	case pgtype.Infinity:
		return math.MaxInt64, nil
	case pgtype.NegativeInfinity:
		return math.MinInt64, nil
	}
	if oid == oidDate {
		return tm.Unix() / 86400, nil
	}
	return tm.UnixMicro(), nil
}

// formatFloat8 prints a float8 as PostgreSQL does (extra_float_digits >
// 0, the default since PostgreSQL 12): the shortest exact form, fixed
// notation for decimal exponents -4..14, else d.ddde+XX.
func formatFloat8(f float64) string {
	return formatFloatPG(f, 64, 15)
}

// formatFloat4 prints a float4 likewise (fixed notation for exponents
// -4..5).
func formatFloat4(f float32) string {
	return formatFloatPG(float64(f), 32, 6)
}

func formatFloatPG(f float64, bitSize, fixedBelow int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, bitSize)
	i := strings.LastIndexByte(e, 'e')
	exp, _ := strconv.Atoi(e[i+1:])
	if exp >= -4 && exp < fixedBelow {
		return strconv.FormatFloat(f, 'f', -1, bitSize)
	}
	return e
}

// decimal is a numeric value: v / 10^scale, or NaN or ±Infinity.
type decimal struct {
	v     *big.Int
	scale int32
	nan   bool
	inf   int // +1, -1
}

var bigTen = big.NewInt(10)

func pow10(n int32) *big.Int {
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

func decodeNumeric(format int16, v []byte) (decimal, error) {
	if format == 1 {
		return decodeNumericBinary(v)
	}
	s := string(v)
	switch s {
	case "NaN":
		return decimal{nan: true}, nil
	case "Infinity":
		return decimal{inf: 1}, nil
	case "-Infinity":
		return decimal{inf: -1}, nil
	}
	intPart, frac, _ := strings.Cut(s, ".")
	n, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return decimal{}, fmt.Errorf("bad numeric %q", s)
	}
	return decimal{v: n, scale: int32(len(frac))}, nil
}

func decodeNumericBinary(b []byte) (decimal, error) {
	if len(b) < 8 {
		return decimal{}, errors.New("bad binary numeric")
	}
	ndigits := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int32(binary.BigEndian.Uint16(b[6:]))
	switch sign {
	case 0xC000:
		return decimal{nan: true}, nil
	case 0xD000:
		return decimal{inf: 1}, nil
	case 0xF000:
		return decimal{inf: -1}, nil
	}
	if len(b) < 8+2*ndigits {
		return decimal{}, errors.New("bad binary numeric")
	}
	n := new(big.Int)
	tenK := big.NewInt(10000)
	for i := 0; i < ndigits; i++ {
		n.Mul(n, tenK)
		n.Add(n, big.NewInt(int64(binary.BigEndian.Uint16(b[8+2*i:]))))
	}
	// value = n * 10000^(weight-(ndigits-1)); as v / 10^dscale:
	e := int32(4*(weight-(ndigits-1))) + dscale
	switch {
	case e > 0:
		n.Mul(n, pow10(e))
	case e < 0:
		n.Quo(n, pow10(-e))
	}
	if sign == 0x4000 {
		n.Neg(n)
	}
	return decimal{v: n, scale: dscale}, nil
}

// rescale returns v expressed with scale s (s >= d.scale).
func (d decimal) at(s int32) *big.Int {
	if s == d.scale {
		return d.v
	}
	return new(big.Int).Mul(d.v, pow10(s-d.scale))
}

func (d decimal) cmp(o decimal) int {
	rank := func(x decimal) int {
		switch {
		case x.nan:
			return 2
		case x.inf != 0:
			return x.inf
		}
		return 0
	}
	ra, rb := rank(d), rank(o)
	if ra != 0 || rb != 0 {
		return cmpInt(int64(ra), int64(rb))
	}
	s := max(d.scale, o.scale)
	return d.at(s).Cmp(o.at(s))
}

func (d decimal) add(o decimal) decimal {
	switch {
	case d.nan || o.nan:
		return decimal{nan: true}
	case d.inf != 0 && o.inf != 0 && d.inf != o.inf:
		return decimal{nan: true}
	case d.inf != 0:
		return d
	case o.inf != 0:
		return o
	}
	s := max(d.scale, o.scale)
	return decimal{v: new(big.Int).Add(d.at(s), o.at(s)), scale: s}
}

// normalString is the value without trailing fractional zeros (for
// grouping).
func (d decimal) normalString() string {
	switch {
	case d.nan:
		return "NaN"
	case d.inf > 0:
		return "Infinity"
	case d.inf < 0:
		return "-Infinity"
	}
	s := d.String()
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// String formats d as numeric_out does: its scale's digits after the point.
func (d decimal) String() string {
	switch {
	case d.nan:
		return "NaN"
	case d.inf > 0:
		return "Infinity"
	case d.inf < 0:
		return "-Infinity"
	}
	neg := d.v.Sign() < 0
	digits := new(big.Int).Abs(d.v).String()
	if d.scale > 0 {
		if len(digits) <= int(d.scale) {
			digits = strings.Repeat("0", int(d.scale)-len(digits)+1) + digits
		}
		i := len(digits) - int(d.scale)
		digits = digits[:i] + "." + digits[i:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// base10000 returns |d| as base-10000 digits (most significant first,
// without leading or trailing zero digits) and the weight of the first.
func (d decimal) base10000() (digits []uint16, weight int) {
	s4 := (d.scale + 3) / 4 * 4
	if d.scale < 0 {
		s4 = 0
	}
	n := new(big.Int).Abs(d.v)
	if s4 > d.scale {
		n.Mul(n, pow10(s4-d.scale))
	}
	var groups []uint16 // least significant first
	tenK := big.NewInt(10000)
	m := new(big.Int)
	for n.Sign() > 0 {
		n.QuoRem(n, tenK, m)
		groups = append(groups, uint16(m.Int64()))
	}
	if len(groups) == 0 {
		return nil, 0
	}
	weight = len(groups) - 1 - int(s4/4)
	for i, j := 0, len(groups)-1; i < j; i, j = i+1, j-1 {
		groups[i], groups[j] = groups[j], groups[i]
	}
	for len(groups) > 0 && groups[len(groups)-1] == 0 {
		groups = groups[:len(groups)-1]
	}
	return groups, weight
}

// appendBinary encodes d in numeric's binary form.
func (d decimal) appendBinary(dst []byte) []byte {
	var sign uint16
	var digits []uint16
	var weight int
	switch {
	case d.nan:
		sign = 0xC000
	case d.inf > 0:
		sign = 0xD000
	case d.inf < 0:
		sign = 0xF000
	default:
		if d.v.Sign() < 0 {
			sign = 0x4000
		}
		digits, weight = d.base10000()
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(max(d.scale, 0)))
	for _, g := range digits {
		dst = binary.BigEndian.AppendUint16(dst, g)
	}
	return dst
}

// numericDiv divides as PostgreSQL's numeric_div does (avg's final step):
// the scale select_div_scale picks (at least 16 significant digits, not
// less than either input's scale), rounded half away from zero.
func numericDiv(a, b decimal) decimal {
	if a.nan || b.nan || a.inf != 0 {
		if a.inf != 0 && !b.nan && b.inf == 0 {
			return decimal{inf: a.inf * b.v.Sign()}
		}
		return decimal{nan: true}
	}
	// select_div_scale
	weight1, first1 := 0, uint16(0)
	if dg, w := a.base10000(); len(dg) > 0 {
		weight1, first1 = w, dg[0]
	}
	weight2, first2 := 0, uint16(0)
	if dg, w := b.base10000(); len(dg) > 0 {
		weight2, first2 = w, dg[0]
	}
	qweight := weight1 - weight2
	if first1 <= first2 {
		qweight--
	}
	rscale := int32(16 - qweight*4)
	rscale = max(rscale, a.scale, b.scale, 0)
	rscale = min(rscale, 1000)
	// a/b = (a.v/10^as) / (b.v/10^bs); result r.v = round(a/b * 10^rscale)
	num := new(big.Int).Mul(a.v, pow10(rscale+b.scale))
	den := new(big.Int).Mul(b.v, pow10(a.scale))
	if den.Sign() < 0 {
		num.Neg(num)
		den.Neg(den)
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	// Round half away from zero.
	r2 := new(big.Int).Mul(new(big.Int).Abs(r), big.NewInt(2))
	if r2.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return decimal{v: q, scale: rscale}
}
