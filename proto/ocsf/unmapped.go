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
	w := walker{used: m.used, out: dst}
	ok, err := w.value(reflect.ValueOf(m.e).Elem(), record.get())
	if !ok || err != nil {
		return dst, false, err
	}
	return w.out, true, nil
}

// walker writes a record's unused fields as JSON.
type walker struct {
	used map[string]bool
	out  []byte
}

// A node is how the walk writes the values of one type at one JSON path of the record,
// worked out once from reflect and the json tags: reading a struct's fields and tags, and
// building each member's path, on every line was most of the walk's time.
type node struct {
	typ reflect.Type
	// path is the dotted JSON path ("" for the record itself).
	path string
	// free: the values of a map, whose keys are data; the mapping uses no field there.
	free bool
	// members are a struct's fields that encoding/json writes; elem is a pointer's, slice's
	// or map's element.
	members []member
	elem    *child
}

// member is one field of a struct as encoding/json writes it.
type member struct {
	index int
	name  string
	// path is the member's JSON path; "" under a map (free), where none is looked up.
	path      string
	omitEmpty bool
	// embedded: a struct embedded without a name (vigil's Correlation), whose fields
	// encoding/json promotes into its parent.
	embedded bool
	node     *child
}

// child is a node built when the walk first reaches it, so a type that contains itself
// (through a pointer, slice or map) is built only as deep as records go.
type child struct {
	once sync.Once
	typ  reflect.Type
	path string
	free bool
	n    *node
}

func (c *child) get() *node {
	c.once.Do(func() { c.n = newNode(c.typ, c.path, c.free) })
	return c.n
}

// record is the root of the walk.
var record = &child{typ: reflect.TypeFor[proto.Event]()}

// newNode works out how values of type t at path are written.
func newNode(t reflect.Type, path string, free bool) *node {
	n := &node{typ: t, path: path, free: free}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		n.elem = &child{typ: t.Elem(), path: path, free: free}
	case reflect.Map:
		n.elem = &child{typ: t.Elem(), free: true}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			mb := member{
				index: i, name: cmp.Or(name, f.Name),
				omitEmpty: strings.Contains(","+opts+",", ",omitempty,"),
				embedded:  f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct,
			}
			switch {
			case mb.embedded:
				mb.path = path
			case !free:
				mb.path = strings.TrimPrefix(path+"."+mb.name, ".")
			}
			mb.node = &child{typ: f.Type, path: mb.path, free: free}
			n.members = append(n.members, mb)
		}
	}
	return n
}

// timeType is written in proto.TimeLayout, as proto writes its two times.
var timeType = reflect.TypeFor[time.Time]()

// value writes v, of n's type, and reports whether it wrote anything: an object with no
// member left (all used, or empty) is not written.
func (w *walker) value(v reflect.Value, n *node) (bool, error) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		return w.value(v.Elem(), n.elem.get())
	case reflect.Interface:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		// No record field is an interface today; one would be walked by its dynamic type.
		return w.value(v.Elem(), newNode(v.Elem().Type(), n.path, n.free))
	case reflect.Struct:
		if n.typ == timeType {
			w.out = appendString(w.out, v.Interface().(time.Time).UTC().Format(proto.TimeLayout))
			return true, nil
		}
		start, cnt := len(w.out), 0
		w.out = append(w.out, '{')
		if err := w.fields(v, n, &cnt); err != nil {
			return false, err
		}
		return w.end(start, cnt), nil
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
		start, cnt := len(w.out), 0
		w.out = append(w.out, '{')
		elem := n.elem.get()
		for _, k := range keys {
			if err := w.member(k, "", v.MapIndex(reflect.ValueOf(k).Convert(n.typ.Key())), elem, &cnt); err != nil {
				return false, err
			}
		}
		return w.end(start, cnt), nil
	case reflect.Slice:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		elem := n.elem.get()
		w.out = append(w.out, '[')
		for i := range v.Len() {
			if i > 0 {
				w.out = append(w.out, ',')
			}
			if ok, err := w.value(v.Index(i), elem); err != nil {
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

// end closes the object opened at start with cnt members, or takes it back when cnt is 0.
func (w *walker) end(start, cnt int) bool {
	if cnt == 0 {
		w.out = w.out[:start]
		return false
	}
	w.out = append(w.out, '}')
	return true
}

// member writes name and v, of node n, as the next member of the open object, which has cnt
// members so far, unless path is used or it writes nothing. A map's entries have no path.
func (w *walker) member(name, path string, v reflect.Value, n *node, cnt *int) error {
	if path != "" && w.used[path] {
		return nil
	}
	before := len(w.out)
	if *cnt > 0 {
		w.out = append(w.out, ',')
	}
	w.out = append(appendString(w.out, name), ':')
	ok, err := w.value(v, n)
	if err != nil {
		return err
	}
	if !ok {
		w.out = w.out[:before]
		return nil
	}
	*cnt++
	return nil
}

// fields writes the fields of struct v, of node n, that encoding/json would write, by their
// JSON names, as members of the open object.
func (w *walker) fields(v reflect.Value, n *node, cnt *int) error {
	for i := range n.members {
		mb := &n.members[i]
		fv := v.Field(mb.index)
		switch {
		case mb.embedded:
			if err := w.fields(fv, mb.node.get(), cnt); err != nil {
				return err
			}
		case mb.omitEmpty && isEmpty(fv):
		default:
			if err := w.member(mb.name, mb.path, fv, mb.node.get(), cnt); err != nil {
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
