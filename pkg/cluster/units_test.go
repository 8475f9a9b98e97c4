package cluster

import "testing"

func TestParseMB(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{
		{"4096", 4096, false}, {"4096mb", 4096, false}, {"4096MB", 4096, false}, {"4g", 4096, false},
		{"4G", 4096, false}, {"4gb", 4096, false}, {"4GiB", 4096, false}, {"1.5g", 1536, false},
		{"20g", 20480, false}, {"1t", 1048576, false}, {"2048k", 2, false},
		{"abc", 0, true}, {"", 0, true}, {"-1g", 0, true}, {"g", 0, true}, {"4x", 0, true},
		{"1e30g", 0, true}, {"nan", 0, true}, {"NaN", 0, true}, {"inf", 0, true}, {"+Inf", 0, true}, {"-inf", 0, true},
		{"16t", MaxMB, false}, {"17t", 0, true}, {"1e300", 0, true}, {"9223372036854775807", 0, true}, {"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseMB(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseMB(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
