package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Script is a parsed scenario file.
type Script struct {
	Name  string // the file's base name, or what Parse was given
	Path  string // as given to ParseFile, for failure messages
	Steps []*Step
}

// Step is one command line of a script.
type Step struct {
	Line int    // 1-based line number in the file
	Text string // the line as written, comment removed, trimmed
	Cmd  string // the first word
	// Args are the words after Cmd that are not key=value, in order ("|"
	// and "=" standing alone included).
	Args []string
	// KV are the key=value words before "->".
	KV map[string]string
	// Arrow is whether the line has "->"; Want are the words after it.
	Arrow bool
	Want  []string
}

// ParseFile reads and parses the script at path.
func ParseFile(path string) (*Script, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(filepath.Base(path), string(src))
	if s != nil {
		s.Path = path
	}
	return s, err
}

// Parse splits src into steps: one command a line, blank lines and
// comments (from a "#" at the start of a word to the line's end) skipped.
// It checks each command's name and arity, not its meaning: a script
// with a typo fails before a cluster is started.
func Parse(name, src string) (*Script, error) {
	s := &Script{Name: name, Path: name}
	for i, raw := range strings.Split(src, "\n") {
		text := stripComment(raw)
		if text == "" {
			continue
		}
		st := &Step{Line: i + 1, Text: text, KV: map[string]string{}}
		words := strings.Fields(text)
		st.Cmd = words[0]
		for _, w := range words[1:] {
			switch {
			case st.Arrow:
				st.Want = append(st.Want, w)
			case w == "->":
				st.Arrow = true
			case isOption(w):
				k, v, _ := strings.Cut(w, "=")
				if _, dup := st.KV[k]; dup {
					return s, fmt.Errorf("%s:%d: %s: %s= given twice", name, st.Line, text, k)
				}
				st.KV[k] = v
			default:
				st.Args = append(st.Args, w)
			}
		}
		// "within 2s" reads better in a script than within=2s; both work.
		for i := 0; i+1 < len(st.Args); i++ {
			if st.Args[i] == "within" {
				if _, dup := st.KV["within"]; dup {
					return s, fmt.Errorf("%s:%d: %s: within given twice", name, st.Line, text)
				}
				st.KV["within"] = st.Args[i+1]
				st.Args = append(st.Args[:i:i], st.Args[i+2:]...)
				break
			}
		}
		spec, ok := commands[st.key()]
		if !ok {
			hint := ""
			if st.Cmd == "sleep" {
				hint = " (scripts do not sleep: wait for a condition with `wait` or a `within` clause)"
			}
			return s, fmt.Errorf("%s:%d: unknown command %q%s", name, st.Line, st.Cmd, hint)
		}
		if err := spec.check(st); err != nil {
			return s, fmt.Errorf("%s:%d: %s: %v", name, st.Line, text, err)
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// isOption tells a key=value word from a positional one: its key is a
// word of letters, digits and dashes (so ">=" and "=" are positional).
func isOption(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	if !ok || k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// stripComment removes a comment and surrounding space. A "#" starts a
// comment at the start of the line or after a space, so values may hold
// one.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	return strings.TrimSpace(line)
}

// key names the command in the commands table: its first word, and for
// expect its second too ("expect leader").
func (st *Step) key() string {
	if st.Cmd == "expect" && len(st.Args) > 0 {
		return "expect " + st.Args[0]
	}
	return st.Cmd
}

// spec is a command: what the parser checks of it, and what runs it.
type spec struct {
	minArgs, maxArgs int      // positional words; maxArgs -1 for any
	keys             []string // allowed key=value keys
	anyKeys          bool     // any key=value (member names)
	arrow            bool     // may have "-> ..."
	run              func(r *runner, st *Step)
}

func (sp spec) check(st *Step) error {
	if len(st.Args) < sp.minArgs || (sp.maxArgs >= 0 && len(st.Args) > sp.maxArgs) {
		if sp.maxArgs == sp.minArgs {
			return fmt.Errorf("takes %d argument(s), got %d", sp.minArgs, len(st.Args))
		}
		return fmt.Errorf("takes %d to %d arguments, got %d", sp.minArgs, sp.maxArgs, len(st.Args))
	}
	for k := range st.KV {
		allowed := sp.anyKeys
		for _, a := range sp.keys {
			allowed = allowed || a == k
		}
		if !allowed {
			return fmt.Errorf("unknown option %s= (allowed: %s)", k, strings.Join(sp.keys, ", "))
		}
	}
	if st.Arrow && !sp.arrow {
		return fmt.Errorf("takes no \"-> ...\"")
	}
	return nil
}
