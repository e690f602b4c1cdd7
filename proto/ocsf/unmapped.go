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

	"github.com/vigil-sensor/vigil/internal/jsonstr"
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
	ok, err := w.value(reflect.ValueOf(m.e).Elem(), walkPlan().record)
	if !ok || err != nil {
		return dst, false, err
	}
	return w.out, true, nil
}

// walker writes a record's unused fields as JSON.
type walker struct {
	used pathSet
	out  []byte
}

// pathSet is a set of the record's JSON paths, by their ids in walkPlan: the mappings' sets
// are worked out as the package starts, a mapping adds them with a few ORs and the walk tests
// a bit for each member, where a map of the paths took a fifth of an OCSF line's time to fill,
// look up and clear.
type pathSet []uint64

func (s *pathSet) add(id int) {
	if w := id / 64; w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	(*s)[id/64] |= 1 << (id % 64)
}

func (s *pathSet) union(t pathSet) {
	if len(*s) < len(t) {
		*s = append(*s, make([]uint64, len(t)-len(*s))...)
	}
	for i, w := range t {
		(*s)[i] |= w
	}
}

// pathsOf is the set of the record's fields at paths, JSON paths as on the native line. A
// path that names no field is a mistake in a mapping: it panics, as the package starts.
func pathsOf(paths ...string) pathSet {
	var s pathSet
	for _, p := range paths {
		id, ok := walkPlan().ids[p]
		if !ok {
			panic("ocsf: no native field " + p)
		}
		s.add(id)
	}
	return s
}

func (s pathSet) has(id int) bool {
	return id >= 0 && id/64 < len(s) && s[id/64]&(1<<(id%64)) != 0
}

// plan is how the walk writes a record, worked out once from reflect and the json tags:
// reading a struct's fields and tags, and building each member's path, on every line was
// most of the walk's time.
type plan struct {
	record *node
	// ids number the JSON paths of the record's fields (outside maps).
	ids map[string]int
}

// A node is how the walk writes the values of one type at one JSON path.
type node struct {
	typ reflect.Type
	// members are a struct's fields that encoding/json writes; elem is a pointer's, slice's
	// or map's element.
	members []member
	elem    *node
}

// member is one field of a struct as encoding/json writes it.
type member struct {
	index int
	name  string
	// key is name quoted, with its colon, as the walk writes it.
	key string
	// id is the member's path in ids; -1 inside a map, whose keys are data: no path there
	// is mapped.
	id        int
	omitEmpty bool
	// embedded: a struct embedded without a name (vigil's Correlation), whose fields
	// encoding/json promotes into its parent.
	embedded bool
	node     *node
}

var walkPlan = sync.OnceValue(func() *plan {
	p := &plan{ids: map[string]int{}}
	p.record = p.node(reflect.TypeFor[proto.Event](), "", false, nil)
	return p
})

// node works out how values of type t at path are written; free: inside a map. outer are
// the struct types t is inside of: a record is a finite tree, and a type inside itself
// would make its paths endless.
func (p *plan) node(t reflect.Type, path string, free bool, outer []reflect.Type) *node {
	n := &node{typ: t}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		n.elem = p.node(t.Elem(), path, free, outer)
	case reflect.Map:
		n.elem = p.node(t.Elem(), "", true, outer)
	case reflect.Struct:
		if slices.Contains(outer, t) {
			panic("ocsf: " + t.String() + " contains itself: the unmapped walk needs a finite record")
		}
		outer = append(outer, t)
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
				index: i, name: cmp.Or(name, f.Name), id: -1,
				omitEmpty: strings.Contains(","+opts+",", ",omitempty,"),
				embedded:  f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct,
			}
			mb.key = string(jsonstr.Append(nil, mb.name)) + ":"
			sub := path
			if !mb.embedded {
				sub = strings.TrimPrefix(path+"."+mb.name, ".")
				if !free {
					mb.id = p.id(sub)
				}
			}
			mb.node = p.node(f.Type, sub, free, outer)
			n.members = append(n.members, mb)
		}
	}
	return n
}

// id is path's id, a new one the first time.
func (p *plan) id(path string) int {
	id, ok := p.ids[path]
	if !ok {
		id = len(p.ids)
		p.ids[path] = id
	}
	return id
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
		return w.value(v.Elem(), n.elem)
	case reflect.Interface:
		if v.IsNil() {
			w.out = append(w.out, "null"...)
			return true, nil
		}
		// No record field is an interface today; one would be walked by its dynamic type,
		// with none of its fields mapped.
		return w.value(v.Elem(), new(plan).node(v.Elem().Type(), "", true, nil))
	case reflect.Struct:
		if n.typ == timeType {
			w.out = jsonstr.Append(w.out, v.Interface().(time.Time).UTC().Format(proto.TimeLayout))
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
		// The record's maps (vigil.lost, vigil.join's), read without reflect: reflect
		// allocates each key and value it reads from a map.
		switch m := v.Interface().(type) {
		case map[string]string:
			return stringMap(w, m, jsonstr.Append[string]), nil
		case map[string]uint64:
			return stringMap(w, m, appendUint), nil
		}
		keys := make([]string, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			keys = append(keys, it.Key().String())
		}
		slices.Sort(keys) // as encoding/json writes maps
		start, cnt := len(w.out), 0
		w.out = append(w.out, '{')
		for _, k := range keys {
			if err := w.member("", k, -1, v.MapIndex(reflect.ValueOf(k).Convert(n.typ.Key())), n.elem, &cnt); err != nil {
				return false, err
			}
		}
		return w.end(start, cnt), nil
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
			if ok, err := w.value(v.Index(i), n.elem); err != nil {
				return false, err
			} else if !ok {
				w.out = append(w.out, "{}"...) // an element is kept, empty or not
			}
		}
		w.out = append(w.out, ']')
		return true, nil
	case reflect.String:
		w.out = jsonstr.Append(w.out, v.String())
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

// stringMap writes m with its keys sorted, as encoding/json writes maps, each value by
// appendValue; nothing for an empty map.
func stringMap[V any](w *walker, m map[string]V, appendValue func([]byte, V) []byte) bool {
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return false
	}
	slices.Sort(keys)
	w.out = append(w.out, '{')
	for i, k := range keys {
		if i > 0 {
			w.out = append(w.out, ',')
		}
		w.out = appendValue(append(jsonstr.Append(w.out, k), ':'), m[k])
	}
	w.out = append(w.out, '}')
	return true
}

func appendUint(b []byte, v uint64) []byte {
	return strconv.AppendUint(b, v, 10)
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

// member writes v, of node n, as the next member of the open object, which has cnt members so
// far, unless its path (id) is used or it writes nothing. Its name is key, written as it is,
// or else name, quoted here (a map's keys).
func (w *walker) member(key, name string, id int, v reflect.Value, n *node, cnt *int) error {
	if w.used.has(id) {
		return nil
	}
	before := len(w.out)
	if *cnt > 0 {
		w.out = append(w.out, ',')
	}
	if key != "" {
		w.out = append(w.out, key...)
	} else {
		w.out = append(jsonstr.Append(w.out, name), ':')
	}
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
			if err := w.fields(fv, mb.node, cnt); err != nil {
				return err
			}
		case mb.omitEmpty && isEmpty(fv):
		default:
			if err := w.member(mb.key, "", mb.id, fv, mb.node, cnt); err != nil {
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
