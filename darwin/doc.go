// Package darwin is Vigil's macOS source: EndpointSecurity events read as JSON lines from
// Apple's /usr/bin/eslogger, which carries the EndpointSecurity entitlement so that Vigil needs
// none of its own. The lines are decoded, followed into agent process trees in user space by
// the one tree filter every source shares (sensor/tree), and mapped onto the actions and fields
// of the Linux sources.
//
// Everything but the sysctl bootstrap and the boot id is portable and tested on Linux: the
// decoder (table tests on real eslogger lines, a fuzz target), the sequence accounting that
// turns global_seq_num gaps into lost counts, and the supervisor that restarts eslogger. A
// recorded capture replays through the same code on any OS (NewReplay).
package darwin
