package rules

import "container/list"

// lru is a map bounded to max entries that forgets the least recently used one, counting
// each eviction. The detector's memory of calls, sessions, prompts and processes must not
// grow with the life of the sensor.
type lru[V any] struct {
	max     int
	order   *list.List // front: most recently used
	entries map[string]*list.Element
	evicted uint64
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), entries: map[string]*list.Element{}}
}

// get returns the value of key and marks it used.
func (l *lru[V]) get(key string) (V, bool) {
	el, ok := l.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*lruEntry[V]).val, true
}

// getOrAdd returns the value of key, made by mk when missing (evicting the oldest entry when
// full).
func (l *lru[V]) getOrAdd(key string, mk func() V) V {
	if v, ok := l.get(key); ok {
		return v
	}
	if l.order.Len() >= l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.entries, oldest.Value.(*lruEntry[V]).key)
		l.evicted++
	}
	v := mk()
	l.entries[key] = l.order.PushFront(&lruEntry[V]{key: key, val: v})
	return v
}

// remove forgets key.
func (l *lru[V]) remove(key string) {
	if el, ok := l.entries[key]; ok {
		l.order.Remove(el)
		delete(l.entries, key)
	}
}

func (l *lru[V]) len() int { return l.order.Len() }

// each calls f with every value, most recently used first, without marking any used.
func (l *lru[V]) each(f func(V)) {
	for el := l.order.Front(); el != nil; el = el.Next() {
		f(el.Value.(*lruEntry[V]).val)
	}
}
