package proto

import (
	"bytes"
	"reflect"
	"strconv"
	"time"
)

// fastJSON is whether AppendJSON may use appendEventFast: it writes the same bytes as the
// reflection encoder for an event with every field set to a distinct value (a forgotten field
// is missing, a swapped one out of place, an unescaped one bare) and for one with every group
// present but every value empty (omitempty). A field added to Event without its hand-written
// encoding thus costs speed, never a field; TestFastEncoderCoversEveryField fails on it.
var fastJSON = fastMatchesReflection()

func fastMatchesReflection() bool {
	for _, values := range []bool{true, false} {
		e := filledEvent(values)
		fast, err := appendEventFast(nil, e)
		if err != nil {
			return false
		}
		ref, err := appendEventReflect(nil, e)
		if err != nil || !bytes.Equal(fast, ref) {
			return false
		}
	}
	return true
}

// filledEvent returns an Event with every pointer, slice and map reachable from it allocated,
// found by reflection so that fields added later are filled too. With values, every leaf
// holds a distinct value (strings with characters JSON escapes, lists of two, maps of two);
// without, every leaf is empty (zero numbers, "" strings, empty non-nil lists and maps).
func filledEvent(values bool) *Event {
	var e Event
	n := 0
	fill(reflect.ValueOf(&e).Elem(), values, &n)
	return &e
}

var timeType = reflect.TypeFor[time.Time]()

func fill(v reflect.Value, values bool, n *int) {
	if !v.CanSet() {
		return
	}
	*n++
	if v.Type() == timeType {
		if values {
			v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(*n), int64(*n)).In(time.FixedZone("", 3600))))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), values, n)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), values, n)
		}
	case reflect.Slice:
		if !values {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), values, n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			if !values {
				return
			}
			k, x := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, values, n)
			fill(x, values, n)
			v.SetMapIndex(k, x)
		}
	case reflect.String:
		if values {
			v.SetString("v" + strconv.Itoa(*n) + " <&>\"\\\t\x01\u2028é\xff")
		}
	case reflect.Bool:
		v.SetBool(values)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if values {
			v.SetInt(-int64(*n))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if values {
			v.SetUint(uint64(*n))
		}
	case reflect.Float32, reflect.Float64:
		if values {
			v.SetFloat(float64(*n) + 0.5)
		}
	}
}
