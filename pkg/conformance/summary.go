package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Summary is what a run's JUnit report says: the specs that ran, and why the others did not.
type Summary struct {
	Passed, Failed int
	Failures       []string
	Skipped        map[string]string // spec → the reason the suite gave
	Took           time.Duration
}

// junit is the subset of ginkgo's JUnit report read here.
type junit struct {
	Suites []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Status  string `xml:"status,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// Summarize reads a ginkgo JUnit report. Specs left out by --focus/--skip are reported by ginkgo
// as skipped with the bare message "skipped": they are not counted; a spec that skipped itself
// (too few nodes, a missing feature) says why, and is.
func Summarize(path string) (Summary, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Summary{}, err
	}
	var j junit
	if err := xml.Unmarshal(raw, &j); err != nil {
		return Summary{}, fmt.Errorf("%s: %w", path, err)
	}
	s := Summary{Skipped: map[string]string{}}
	for _, suite := range j.Suites {
		for _, c := range suite.Cases {
			if !strings.HasPrefix(c.Name, "[It]") {
				continue // suite setup and teardown nodes
			}
			name := strings.TrimSpace(strings.TrimPrefix(c.Name, "[It]"))
			switch {
			case c.Failure != nil || c.Error != nil || c.Status == "failed" || c.Status == "panicked" || c.Status == "timedout" || c.Status == "interrupted":
				s.Failed++
				s.Failures = append(s.Failures, name)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				why := ""
				if c.Skipped != nil {
					why = c.Skipped.Message
				}
				if why == "" || why == "skipped" {
					continue
				}
				s.Skipped[name] = strings.TrimSpace(strings.TrimPrefix(why, "skipped - "))
			default:
				s.Passed++
			}
		}
	}
	sort.Strings(s.Failures)
	return s, nil
}

// String is summary.txt: failures, skips with their reasons, and last the counts line
// "N passed, M failed, K skipped".
func (s Summary) String() string {
	var b strings.Builder
	if s.Took > 0 {
		fmt.Fprintf(&b, "took %s\n", s.Took)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "FAILED  %s\n", f)
	}
	names := make([]string, 0, len(s.Skipped))
	for n := range s.Skipped {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "SKIPPED %s: %s\n", n, firstLine(s.Skipped[n]))
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d skipped\n", s.Passed, s.Failed, len(s.Skipped))
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
