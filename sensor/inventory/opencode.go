package inventory

import (
	"bytes"
	"os"
	"path"

	"github.com/vigil-sensor/vigil/correlate/plugins/opencode"
	"github.com/vigil-sensor/vigil/proto"
)

// readPlugins reports an opencode plugin folder that exists, with Vigil's plugin in it when
// it is there, and whether it is the one this sensor ships.
func (s *scanner) readPlugins(w where) {
	if fi, err := os.Stat(s.host(w.path)); err != nil || !fi.IsDir() {
		return
	}
	c := w.config()
	p := path.Join(w.path, opencode.FileName)
	b, err := s.read(p, w.owner)
	switch {
	case err == nil:
		c.Plugin = &proto.InventoryPlugin{Path: p, Current: bytes.Equal(b, opencode.Source)}
	default:
		s.failUnlessMissing(p, err)
	}
	s.r.Configs = append(s.r.Configs, c)
}
