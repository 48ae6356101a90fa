package sqlroute

import (
	"encoding/binary"
	"errors"
)

// arrayElem is one element of a one-dimensional array parameter, in the
// parameter's wire format.
type arrayElem struct {
	b      []byte
	format int16
	null   bool
}

var errArray = errors.New("not a one-dimensional array")

// decodeArray splits a one-dimensional array parameter (= ANY($1)) into its
// elements: the binary form, or the text form {a,b,"c d",NULL}.
func decodeArray(raw []byte, format int16) ([]arrayElem, error) {
	if format == 1 {
		return decodeBinaryArray(raw)
	}
	return decodeTextArray(raw)
}

func decodeBinaryArray(b []byte) ([]arrayElem, error) {
	if len(b) < 12 {
		return nil, errArray
	}
	ndim := int32(binary.BigEndian.Uint32(b))
	b = b[12:] // ndim, has-null flag, element type
	if ndim == 0 {
		return nil, nil
	}
	if ndim != 1 || len(b) < 8 {
		return nil, errArray
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	b = b[8:]
	if n < 0 || n > len(b)/4 {
		return nil, errArray
	}
	out := make([]arrayElem, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, errArray
		}
		l := int(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
		if l < 0 {
			out = append(out, arrayElem{null: true})
			continue
		}
		if l > len(b) {
			return nil, errArray
		}
		out = append(out, arrayElem{b: b[:l], format: 1})
		b = b[l:]
	}
	return out, nil
}

func decodeTextArray(b []byte) ([]arrayElem, error) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, errArray
	}
	b = b[1 : len(b)-1]
	var out []arrayElem
	for len(b) > 0 {
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		var e []byte
		quoted := false
		if len(b) > 0 && b[0] == '"' {
			quoted = true
			i := 1
			for ; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' && i+1 < len(b) {
					i++
				}
				e = append(e, b[i])
			}
			if i >= len(b) {
				return nil, errArray
			}
			b = b[i+1:]
		} else {
			i := 0
			for i < len(b) && b[i] != ',' {
				if b[i] == '{' || b[i] == '"' {
					return nil, errArray
				}
				i++
			}
			e = b[:i]
			for len(e) > 0 && isSpace(e[len(e)-1]) {
				e = e[:len(e)-1]
			}
			b = b[i:]
		}
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		if !quoted && len(e) == 4 && (e[0]|0x20) == 'n' && (e[1]|0x20) == 'u' && (e[2]|0x20) == 'l' && (e[3]|0x20) == 'l' {
			out = append(out, arrayElem{null: true})
		} else {
			out = append(out, arrayElem{b: e})
		}
		if len(b) == 0 {
			break
		}
		if b[0] != ',' {
			return nil, errArray
		}
		b = b[1:]
	}
	return out, nil
}
