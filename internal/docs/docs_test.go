// Package docs_test checks the README and the pages under docs/ against the
// code they show. Each ```go block must be preceded by a marker
//
//	<!-- snippet: PATH#NAME -->
//
// naming a region of a compiled file (an Example in an *example*_test.go
// file, a program under examples/, or contrib/*/example*), marked there by
// the line comments "// snippet:NAME" and "// snippet:end". The block must
// equal the region, both taken without their common leading indentation.
// Snippets copied by hand drift from the code within a release; markers
// checked by the README's own test command cannot, and need no tool outside
// the standard library (embedmd would, and would rewrite the Markdown rather
// than say where it differs).
//
// It also checks that every relative link in those pages names a file or
// directory that exists.
package docs_test

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// pages returns the Markdown files the checks cover, relative to root.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func readLines(t *testing.T, rel string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}

// block is a fenced code block of a Markdown page.
type block struct {
	line   int    // of the opening fence, from 1
	lang   string // the info string's first word
	marker string // "PATH#NAME" of the snippet marker before it, if any
	body   []string
}

var markerRE = regexp.MustCompile(`^<!--\s*snippet:\s*(\S+)\s*-->$`)

// blocks returns the fenced blocks of a page, each with the snippet marker
// on the last non-blank line before it. It reports markers that precede no
// block.
func blocks(lines []string) (bs []block, stray []int) {
	marker, markerLine := "", 0
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if m := markerRE.FindStringSubmatch(l); m != nil {
			if marker != "" {
				stray = append(stray, markerLine)
			}
			marker, markerLine = m[1], i+1
			continue
		}
		if !strings.HasPrefix(l, "```") {
			if l != "" && marker != "" {
				stray = append(stray, markerLine)
				marker = ""
			}
			continue
		}
		fence := l[:len(l)-len(strings.TrimLeft(l, "`"))]
		b := block{line: i + 1, marker: marker}
		if f := strings.Fields(l[len(fence):]); len(f) > 0 {
			b.lang = f[0]
		}
		marker = ""
		for i++; i < len(lines); i++ {
			if c := strings.TrimSpace(lines[i]); strings.HasPrefix(c, fence) && strings.Trim(c, "`") == "" {
				break
			}
			b.body = append(b.body, lines[i])
		}
		bs = append(bs, b)
	}
	if marker != "" {
		stray = append(stray, markerLine)
	}
	return bs, stray
}

// dedent removes the leading whitespace all non-blank lines share, and
// blank lines at either end.
func dedent(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	prefix, first := "", true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ws := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ws, false
			continue
		}
		for !strings.HasPrefix(ws, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(strings.TrimPrefix(l, prefix), " \t")
	}
	return out
}

// compiled reports whether a snippet's source is one the project compiles
// and documents as an example.
func compiled(p string) bool {
	if !strings.HasSuffix(p, ".go") || path.Clean(p) != p || strings.HasPrefix(p, "../") {
		return false
	}
	base := path.Base(p)
	switch {
	case strings.HasPrefix(p, "examples/"):
		return true
	case strings.HasPrefix(p, "contrib/") && strings.Contains(p[len("contrib/"):], "/example"):
		return true
	default:
		return strings.Contains(base, "example") && strings.HasSuffix(base, "_test.go")
	}
}

// region returns the lines between "// snippet:name" and "// snippet:end"
// in the file at p (relative to root).
func region(p, name string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) != "// snippet:"+name {
			continue
		}
		if start >= 0 {
			return nil, fmt.Errorf("%s: region %q starts twice, at lines %d and %d", p, name, start, i+1)
		}
		start = i + 1
	}
	if start < 0 {
		return nil, fmt.Errorf("%s: no line \"// snippet:%s\"", p, name)
	}
	for i := start; i < len(lines); i++ {
		switch l := strings.TrimSpace(lines[i]); {
		case l == "// snippet:end":
			return dedent(lines[start:i]), nil
		case strings.HasPrefix(l, "// snippet:"):
			return nil, fmt.Errorf("%s:%d: region %q meets %q before its \"// snippet:end\"", p, i+1, name, l)
		}
	}
	return nil, fmt.Errorf("%s:%d: region %q has no \"// snippet:end\"", p, start, name)
}

// firstDifference describes where got (the Markdown) and want (the source)
// part, or returns "" when they are equal.
func firstDifference(got, want []string) string {
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("the Markdown ends at its line %d; the source goes on with:\n\t%q", i+1, want[i])
		case i >= len(want):
			return fmt.Sprintf("the source ends at its line %d; the Markdown goes on with:\n\t%q", i+1, got[i])
		case got[i] != want[i]:
			return fmt.Sprintf("line %d of the snippet differs:\n\tMarkdown: %q\n\tsource:   %q", i+1, got[i], want[i])
		}
	}
	return ""
}

func TestSnippets(t *testing.T) {
	for _, page := range pages(t) {
		bs, stray := blocks(readLines(t, page))
		for _, l := range stray {
			t.Errorf("%s:%d: a snippet marker with no code block right after it", page, l)
		}
		for _, b := range bs {
			if b.lang != "go" {
				continue
			}
			where := fmt.Sprintf("%s:%d", page, b.line)
			if b.marker == "" {
				t.Errorf("%s: a ```go block with no <!-- snippet: PATH#NAME --> line before it", where)
				continue
			}
			p, name, ok := strings.Cut(b.marker, "#")
			if !ok || p == "" || name == "" {
				t.Errorf("%s: snippet marker %q is not PATH#NAME", where, b.marker)
				continue
			}
			if !compiled(p) {
				t.Errorf("%s: snippet source %s is not an example: want an *example*_test.go file, a program under examples/ or contrib/*/example*", where, p)
				continue
			}
			want, err := region(p, name)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if d := firstDifference(dedent(b.body), want); d != "" {
				t.Errorf("%s: the block differs from %s, region %q: %s", where, p, name, d)
			}
		}
	}
}

var (
	inlineCodeRE = regexp.MustCompile("`[^`]*`")
	linkRE       = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLinkRE    = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$`)
	schemeRE     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

func TestLinks(t *testing.T) {
	for _, page := range pages(t) {
		lines := readLines(t, page)
		inFence := ""
		for i, l := range lines {
			trimmed := strings.TrimSpace(l)
			if strings.HasPrefix(trimmed, "```") {
				fence := trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
				switch {
				case inFence == "":
					inFence = fence
				case strings.HasPrefix(trimmed, inFence) && strings.Trim(trimmed, "`") == "":
					inFence = ""
				}
				continue
			}
			if inFence != "" {
				continue
			}
			text := inlineCodeRE.ReplaceAllString(l, "")
			var targets []string
			for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
				targets = append(targets, m[1])
			}
			if m := refLinkRE.FindStringSubmatch(text); m != nil {
				targets = append(targets, m[1])
			}
			for _, target := range targets {
				if schemeRE.MatchString(target) || strings.HasPrefix(target, "#") {
					continue
				}
				file, _, _ := strings.Cut(target, "#")
				file, _, _ = strings.Cut(file, "?")
				var p string
				if strings.HasPrefix(file, "/") {
					p = filepath.Join(root, filepath.FromSlash(file))
				} else {
					p = filepath.Join(root, filepath.FromSlash(path.Dir(page)), filepath.FromSlash(file))
				}
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s:%d: link %q: no such file or directory", page, i+1, target)
				}
			}
		}
	}
}

// TestEveryPageLinked checks that a reader can reach every page under docs/
// from the README.
func TestEveryPageLinked(t *testing.T) {
	readme := strings.Join(readLines(t, "README.md"), "\n")
	for _, page := range pages(t) {
		if page == "README.md" {
			continue
		}
		if !strings.Contains(readme, "]("+page) {
			t.Errorf("README.md does not link %s", page)
		}
	}
}

func TestDedent(t *testing.T) {
	got := dedent([]string{"", "\t\tif x {", "\t\t\ty()", "", "\t\t}", ""})
	want := []string{"if x {", "\ty()", "", "}"}
	if !slices.Equal(got, want) {
		t.Errorf("dedent = %q, want %q", got, want)
	}
}
