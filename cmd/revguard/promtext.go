package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A sample is one line of the Prometheus text exposition format.
type sample struct {
	labels map[string]string
	value  float64
}

// parseSamples reads the samples of metric name from a Prometheus (or
// OpenMetrics) text exposition and ignores every other line. It is the
// small part of the format watch needs: name{label="value",...} value
// [timestamp], with \\, \" and \n escapes in label values. A parser of our
// own spares the command prometheus/common and its dependencies for these
// few lines.
func parseSamples(r io.Reader, name string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ' && rest[0] != '\t') {
			continue // a comment, another metric, or one whose name only starts with name
		}
		s, err := parseSample(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSample reads what follows a metric's name on its line.
func parseSample(rest string) (sample, error) {
	s := sample{labels: map[string]string{}}
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], s.labels); err != nil {
			return s, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 {
		return s, errors.New("want a value and at most a timestamp after the labels")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", fields[0], err)
	}
	s.value = v
	return s, nil
}

// parseLabels reads label="value" pairs up to the closing brace into into,
// and returns what follows the brace.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", errors.New(`want label="value"`)
		}
		label := strings.TrimSpace(s[:eq])
		var b strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					c = '\n'
				default: // \\ and \"
					c = s[i]
				}
			}
			b.WriteByte(c)
		}
		if i == len(s) {
			return "", fmt.Errorf("label %s: unterminated value", label)
		}
		into[label] = b.String()
		s = strings.TrimLeft(s[i+1:], " ")
		s = strings.TrimPrefix(s, ",")
	}
}
