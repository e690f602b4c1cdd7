package ocsf

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// appendUnmapped appends the OCSF unmapped object to dst: the record without the fields the
// mapping used, under their native (ECS-style) names and nesting, as the native line writes
// them (the same JSON names, omitempty rules and embedded groups), empty objects left out. It
// reports false, with dst unchanged, when nothing is left.
//
// It walks the record and writes JSON as it goes, rather than decoding the native line into
// a map and deleting from it: that took most of an OCSF line's time. It walks every field, so
// a field added to proto.Event reaches unmapped without a change here; a test holds the walk
// to encoding/json's output of the same record.
func (m *mapping) appendUnmapped(dst []byte) ([]byte, bool, error) {
	w := walker{used: m.used, out: dst, path: m.path[:0]}
	ok, err := w.value(reflect.ValueOf(m.e).Elem())
	m.path = w.path
	if !ok || err != nil {
		return dst, false, err
	}
	return w.out, true, nil
}

// walker writes a record's unused fields as JSON. path is the JSON path of the value being
// written, in a reused buffer: a map lookup with string(path) does not allocate.
type walker struct {
	used map[string]bool
	out  []byte
	path []byte
}

// timeType is written in proto.TimeLayout, as proto writes its two times.
var timeType = reflect.TypeFor[time.Time]()

// value writes v and reports whether it wrote anything: an object with no member left (all
// used, or empty) is not written.
func (w *walker) value(v reflect.Value) (bool, error) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		return w.value(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			w.out = appendString(w.out, v.Interface().(time.Time).UTC().Format(proto.TimeLayout))
			return true, nil
		}
		start, n := len(w.out), 0
		w.out = append(w.out, '{')
		if err := w.fields(v, &n); err != nil {
			return false, err
		}
		return w.end(start, n), nil
	case reflect.Map:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		keys := make([]string, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			keys = append(keys, it.Key().String())
		}
		slices.Sort(keys) // as encoding/json writes maps
		start, n := len(w.out), 0
		w.out = append(w.out, '{')
		for _, k := range keys {
			if err := w.member(k, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), &n); err != nil {
				return false, err
			}
		}
		return w.end(start, n), nil
	case reflect.Slice:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		w.out = append(w.out, '[')
		for i := range v.Len() {
			if i > 0 {
				w.out = append(w.out, ',')
			}
			if ok, err := w.value(v.Index(i)); err != nil {
				return false, err
			} else if !ok {
				w.out = append(w.out, "{}"...) // an element is kept, empty or not
			}
		}
		w.out = append(w.out, ']')
		return true, nil
	case reflect.String:
		w.out = appendString(w.out, v.String())
	case reflect.Bool:
		w.out = strconv.AppendBool(w.out, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.out = strconv.AppendInt(w.out, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.out = strconv.AppendUint(w.out, v.Uint(), 10)
	default:
		// A kind no record field has today: encoding/json knows how to write it.
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return false, err
		}
		w.out = append(w.out, b...)
	}
	return true, nil
}

// end closes the object opened at start with n members, or takes it back when n is 0.
func (w *walker) end(start, n int) bool {
	if n == 0 {
		w.out = w.out[:start]
		return false
	}
	w.out = append(w.out, '}')
	return true
}

// member writes name and v as the next member of the open object, which has n members so
// far, unless its path is used or it writes nothing.
func (w *walker) member(name string, v reflect.Value, n *int) error {
	parent := len(w.path)
	if parent > 0 {
		w.path = append(w.path, '.')
	}
	w.path = append(w.path, name...)
	defer func() { w.path = w.path[:parent] }()
	if w.used[string(w.path)] {
		return nil
	}
	before := len(w.out)
	if *n > 0 {
		w.out = append(w.out, ',')
	}
	w.out = append(appendString(w.out, name), ':')
	ok, err := w.value(v)
	if err != nil {
		return err
	}
	if !ok {
		w.out = w.out[:before]
		return nil
	}
	*n++
	return nil
}

// field is one field of a struct as encoding/json writes it.
type field struct {
	index     int
	name      string
	omitEmpty bool
	// embedded: a struct embedded without a name (vigil's Correlation), whose fields
	// encoding/json promotes into its parent.
	embedded bool
}

// fieldCache holds each struct type's fields: reading them from reflect and parsing their
// tags on every record was a third of the walk.
var fieldCache sync.Map // reflect.Type -> []field

func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		fs = append(fs, field{
			index: i, name: cmp.Or(name, f.Name),
			omitEmpty: strings.Contains(","+opts+",", ",omitempty,"),
			embedded:  f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct,
		})
	}
	fieldCache.Store(t, fs)
	return fs
}

// fields writes the fields of struct v encoding/json would write, by their JSON names, as
// members of the open object.
func (w *walker) fields(v reflect.Value, n *int) error {
	for _, f := range fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		switch {
		case f.embedded:
			if err := w.fields(fv, n); err != nil {
				return err
			}
		case f.omitEmpty && isEmpty(fv):
		default:
			if err := w.member(f.name, fv, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// isEmpty is what encoding/json's omitempty leaves out.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
