package cache

import (
	"io"
	"testing"

	"mkube/pkg/out"
)

// A bar shows the bytes its blobs hold: a resume starts it at the partial's size, a restart takes
// that blob's share back to zero, and blobs sharing a bar add up.
func TestMeter(t *testing.T) {
	bar := out.Bar(io.Discard, "x", 1000, true)
	defer bar.Finish()
	a, b := &meter{bar: bar}, &meter{bar: bar}
	steps := []struct {
		name string
		do   func()
		want int64
	}{
		{"resumed at 300", func() { a.set(300) }, 300},
		{"300 more arrive", func() { a.Write(make([]byte, 300)) }, 600},
		{"a second blob held whole", func() { b.set(200) }, 800},
		{"the first starts again", func() { a.set(0) }, 200},
		{"and arrives", func() { a.Write(make([]byte, 800)) }, 1000},
	}
	for _, s := range steps {
		s.do()
		if got := bar.Current(); got != s.want {
			t.Errorf("%s: bar at %d, want %d", s.name, got, s.want)
		}
	}
}
