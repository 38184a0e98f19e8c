package docs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// command is one command a document shows.
type command struct {
	src  string // file:line
	text string // as written, continuation lines joined
	// inline: named in the prose, not shown to be typed: only its --help
	// runs.
	inline bool
}

// programs are the first words that make a code line a command.
var programs = map[string]bool{
	"fdbhook": true, "qemu-hook": true, "network-hook": true, "lxc-hook": true,
	"make": true, "apt": true, "apt-get": true, "dnf": true, "dpkg": true, "rpm": true,
	"sed": true, "systemctl": true, "journalctl": true, "virsh": true, "bridge": true,
	"ip": true, "kill": true, "setsid": true, "promtool": true, "ansible-playbook": true,
}

// isCommand reports whether line starts, after environment assignments,
// with a program of programs.
func isCommand(line string) bool {
	for _, w := range strings.Fields(line) {
		if isAssignment(w) {
			continue
		}
		return programs[baseName(w)]
	}
	return false
}

// ours reports whether text names one of fdbhook's programs or a make
// target first: what an inline mention must run.
func ours(text string) bool {
	f := strings.Fields(text)
	if len(f) == 0 {
		return false
	}
	switch baseName(f[0]) {
	case "fdbhook", "qemu-hook", "network-hook", "lxc-hook":
		return strings.Contains(f[0], "/") || f[0] == baseName(f[0])
	case "make":
		return len(f) > 1
	}
	return false
}

func baseName(w string) string { return w[strings.LastIndexByte(w, '/')+1:] }

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	return ok && k != "" && strings.ToUpper(k) == k && !strings.ContainsAny(k, "-/.")
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// markdownCommands returns the commands of a Markdown file: the command
// lines of its blocks indented by four spaces, the lines of its fenced
// blocks that have a "$ " prompt (or all, in a sh block), and the inline
// code spans that name fdbhook's programs or a make target.
func markdownCommands(t *testing.T, path string) []command {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []command
	fenced, shell, indented, prevBlank := false, false, false, true
	cont, start := "", 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "```"):
			fenced = !fenced
			shell = slices.Contains([]string{"sh", "shell", "bash"}, strings.TrimPrefix(strings.TrimSpace(line), "```"))
		case fenced || strings.HasPrefix(line, "    ") && (indented || prevBlank):
			indented = !fenced
			text, prompt := strings.CutPrefix(strings.TrimSpace(line), "$ ")
			if fenced && !prompt && !shell {
				continue // a fenced block shows output, and commands with a prompt
			}
			if cont == "" {
				start = n
			} else {
				text = cont + " " + text
			}
			if strings.HasSuffix(text, "\\") {
				cont = strings.TrimSuffix(text, "\\")
				continue
			}
			cont = ""
			if isCommand(text) {
				out = append(out, command{src: fmt.Sprintf("%s:%d", path, start), text: text})
			}
		default:
			indented = false
			for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
				if ours(m[1]) {
					out = append(out, command{src: fmt.Sprintf("%s:%d", path, n), text: m[1], inline: true})
				}
			}
		}
		prevBlank = strings.TrimSpace(line) == ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// manCommands returns the commands of the manual page: every command line
// of its SYNOPSIS and EXAMPLES as groff renders them, and, as inline
// mentions, the bold words of the source that name fdbhook's programs.
func manCommands(t *testing.T, path string) []command {
	t.Helper()
	cmd := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", "-rLL=250n", path)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	text, err := cmd.Output()
	if err != nil {
		t.Fatalf("groff %s: %v (groff-base renders the manual page)", path, err)
	}
	var out []command
	section, cont := "", ""
	for i, line := range strings.Split(string(text), "\n") {
		if line != "" && line[0] != ' ' {
			section = strings.TrimSpace(line)
			continue
		}
		text := strings.TrimSpace(cont + " " + strings.TrimSpace(line))
		if cont = ""; strings.HasSuffix(text, "\\") {
			cont = strings.TrimSuffix(text, "\\")
			continue
		}
		if (section == "SYNOPSIS" || section == "EXAMPLES") && isCommand(text) {
			out = append(out, command{src: fmt.Sprintf("%s (rendered line %d)", path, i+1), text: text})
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(src), "\n") {
		macro, args, ok := strings.Cut(line, " ")
		if !ok || (macro != ".B" && macro != ".BR" && macro != ".RB") {
			continue
		}
		if macro == ".RB" {
			continue // roman first: the bold parts are flags or words
		}
		arg := roffText(firstArg(macro, args))
		if ours(arg) {
			out = append(out, command{src: fmt.Sprintf("%s:%d", path, i+1), text: arg, inline: true})
		}
	}
	return out
}

// firstArg is the first bold text of a .B or .BR line: .B's whole line,
// .BR's first argument (quoted, or up to a blank).
func firstArg(macro, args string) string {
	if rest, ok := strings.CutPrefix(args, `"`); ok {
		a, _, _ := strings.Cut(rest, `"`)
		return a
	}
	if macro == ".B" {
		return args
	}
	a, _, _ := strings.Cut(args, " ")
	return a
}

// roffText turns roff escapes into text.
func roffText(s string) string {
	return strings.NewReplacer(`\-`, "-", `\e`, `\`, `\(dq`, `"`, `\fI`, "", `\fP`, "", `\fB`, "", `\fR`, "").Replace(s)
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

// configCommands returns the commands the shipped configuration's
// comments quote ("fdbhook doctor"), as inline mentions.
func configCommands(t *testing.T, path string) []command {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []command
	for i, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range quoted.FindAllStringSubmatch(line, -1) {
			if ours(m[1]) {
				out = append(out, command{src: fmt.Sprintf("%s:%d", path, i+1), text: m[1], inline: true})
			}
		}
	}
	return out
}
