// Package opencode holds Vigil's opencode plugin (vigil.js, README.md): the file an install
// writes into opencode's plugin folder, embedded so that every copy is this one.
package opencode

import _ "embed"

// Source is vigil.js, the plugin.
//
//go:embed vigil.js
var Source []byte

// FileName is the name the plugin is installed under in opencode's plugin folder.
const FileName = "vigil.js"
