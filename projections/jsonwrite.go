package projections

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// maxJSONDepth bounds the nesting of a value the projection serializes.
const maxJSONDepth = 512

// errTooLarge is returned by marshalJS when the output passes its limit.
var errTooLarge = errors.New("too large")

// marshalJS serializes a JavaScript value as JSON.stringify does (own
// enumerable properties in order, toJSON honoured, undefined, functions and
// symbols left out of objects and written as null in arrays), except that
// BigInts are written as strings, as KurrentDB does. It stops with an error
// wrapping errTooLarge as soon as the output passes limit bytes, so that a
// value whose JSON would be huge (an array holding a million references to
// one large string) costs at most limit bytes to refuse. It returns nil and
// no error for undefined, a function or a symbol.
//
// It runs JavaScript (getters, toJSON, proxies) and so must be called
// inside a guarded call of the runtime that owns v.
func marshalJS(rt *goja.Runtime, v goja.Value, limit int) ([]byte, error) {
	w := jsonWriter{rt: rt, limit: limit}
	ok, err := w.value("", v)
	if err != nil || !ok {
		return nil, err
	}
	return w.buf, nil
}

type jsonWriter struct {
	rt    *goja.Runtime
	buf   []byte
	limit int
	stack []*goja.Object // objects being written, to refuse cycles
}

func (w *jsonWriter) grow() error {
	if len(w.buf) > w.limit {
		return fmt.Errorf("its JSON is more than %d bytes: %w", w.limit, errTooLarge)
	}
	return nil
}

// value writes v, or nothing when v has no JSON form (undefined, a function,
// a symbol); ok says whether it wrote.
func (w *jsonWriter) value(key string, v goja.Value) (ok bool, err error) {
	if v == nil || goja.IsUndefined(v) {
		return false, nil
	}
	if goja.IsNull(v) {
		w.buf = append(w.buf, "null"...)
		return true, w.grow()
	}
	if _, sym := v.(*goja.Symbol); sym {
		return false, nil
	}
	obj, isObj := v.(*goja.Object)
	if !isObj {
		return w.primitive(v)
	}
	if _, fn := goja.AssertFunction(obj); fn {
		return false, nil
	}
	if toJSON, fn := goja.AssertFunction(obj.Get("toJSON")); fn {
		r, err := toJSON(obj, w.rt.ToValue(key))
		if err != nil {
			return false, err
		}
		if r2, isObj := r.(*goja.Object); !isObj || r2 != obj {
			return w.value(key, r)
		}
	}
	switch obj.ClassName() {
	case "String", "Number", "Boolean":
		// A boxed primitive is written as its value.
		if valueOf, fn := goja.AssertFunction(obj.Get("valueOf")); fn {
			pv, err := valueOf(obj)
			if err != nil {
				return false, err
			}
			if _, isObj := pv.(*goja.Object); !isObj {
				return w.primitive(pv)
			}
		}
	}
	for _, o := range w.stack {
		if o == obj {
			return false, errors.New("it is cyclic")
		}
	}
	if len(w.stack) >= maxJSONDepth {
		return false, fmt.Errorf("it is nested more than %d levels deep", maxJSONDepth)
	}
	w.stack = append(w.stack, obj)
	defer func() { w.stack = w.stack[:len(w.stack)-1] }()
	if obj.ClassName() == "Array" {
		return true, w.array(obj)
	}
	return true, w.object(obj)
}

func (w *jsonWriter) array(obj *goja.Object) error {
	n := obj.Get("length").ToInteger()
	w.buf = append(w.buf, '[')
	for i := int64(0); i < n; i++ {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		ok, err := w.value(strconv.FormatInt(i, 10), obj.Get(strconv.FormatInt(i, 10)))
		if err != nil {
			return err
		}
		if !ok {
			w.buf = append(w.buf, "null"...)
		}
		if err := w.grow(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, ']')
	return w.grow()
}

func (w *jsonWriter) object(obj *goja.Object) error {
	w.buf = append(w.buf, '{')
	first := true
	for _, k := range obj.Keys() {
		mark := len(w.buf)
		if !first {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendJSONString(w.buf, k)
		w.buf = append(w.buf, ':')
		ok, err := w.value(k, obj.Get(k))
		if err != nil {
			return err
		}
		if !ok {
			w.buf = w.buf[:mark]
			continue
		}
		first = false
		if err := w.grow(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return w.grow()
}

func (w *jsonWriter) primitive(v any) (bool, error) {
	if gv, ok := v.(goja.Value); ok {
		v = gv.Export()
	}
	switch x := v.(type) {
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.buf = append(w.buf, "null"...)
		} else {
			// JavaScript's number to string, which JSON.stringify uses.
			w.buf = append(w.buf, w.rt.ToValue(x).String()...)
		}
	case string:
		w.buf = appendJSONString(w.buf, x)
	case *big.Int:
		w.buf = appendJSONString(w.buf, x.String())
	default:
		// Symbols and anything else without a JSON form.
		return false, nil
	}
	return true, w.grow()
}

// appendJSONString appends s as a JSON string, escaped as JSON.stringify
// escapes it: quotes, backslashes and control characters; invalid UTF-8
// becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
