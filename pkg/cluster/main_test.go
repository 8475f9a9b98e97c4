package cluster_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine outlives the commands these tests run: runners, drivers, pulls and streams end with them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
