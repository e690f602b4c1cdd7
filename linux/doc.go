// Package linux is Vigil's Linux source: eBPF loader and ring-buffer reader, audit fallback,
// /proc bootstrap and lookups.
package linux
