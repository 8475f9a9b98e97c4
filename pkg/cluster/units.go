package cluster

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxMB bounds any size mkube accepts (16 TiB): far beyond a workstation, and far from where an
// int of megabytes, bytes or KiB overflows in a driver.
const MaxMB = 16 << 20

// ParseMB reads a size as minikube's --memory and --disk-size do: a plain number is megabytes;
// suffixes b, k, m, g, t (with optional "b" or "ib") scale it.
func ParseMB(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	if t == "" {
		return 0, fmt.Errorf("%q is not a size: use e.g. 4096, 4096mb or 4g", s)
	}
	mult := 1.0
	switch t[len(t)-1] {
	case 'k':
		mult, t = 1.0/1024, t[:len(t)-1]
	case 'm':
		t = t[:len(t)-1]
	case 'g':
		mult, t = 1024, t[:len(t)-1]
	case 't':
		mult, t = 1024*1024, t[:len(t)-1]
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%q is not a size: use e.g. 4096, 4096mb or 4g", s)
	}
	if mb := n * mult; mb > MaxMB {
		return 0, fmt.Errorf("%q is larger than %d TiB", s, MaxMB>>20)
	}
	return int(n * mult), nil
}
