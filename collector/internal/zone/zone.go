// Package zone loads IANA time zones once: time.LoadLocation reads and
// parses the zone's file on every call (about 24 µs and 8 KiB), and every
// report needs the zones of its egress location (the GeoIP lookup and the
// device's facts) and of its person's declared place.
package zone

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxCached bounds the zones kept: the IANA database names about 600.
const maxCached = 1024

var (
	cache  sync.Map // name -> *time.Location
	cached atomic.Int64
)

// Load is time.LoadLocation, from the zones loaded before when it can. A
// *time.Location is immutable, so one serves every caller. Names that do
// not load are not kept.
func Load(name string) (*time.Location, error) {
	if l, ok := cache.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	if cached.Load() < maxCached {
		if _, loaded := cache.LoadOrStore(name, l); !loaded {
			cached.Add(1)
		}
	}
	return l, nil
}
