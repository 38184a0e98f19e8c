package docs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
)

// noBridge stands in for every bridge a document names: commands that
// read the kernel run against a bridge that does not exist, so that none
// of them can touch a real one.
const noBridge = "fdbtdoc0"

// world is where the documents' commands run: this tree's binaries, and a
// scratch directory standing in for /etc/fdbhook, /run/fdbhook and
// /run/libvirt.
type world struct {
	root, bin, dir string
	shipped        []string // the packages' paths (packaging/nfpm.yaml)
	sources        string   // the Go and maintainer-script sources, for the names they use
	fixtures       map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{root: root, bin: t.TempDir(), dir: t.TempDir()}
	build := exec.Command(goTool(), "build", "-o", w.bin+"/", "./cmd/...")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	w.fixtures = map[string]string{
		"qemu":    filepath.Join(root, "testdata/libvirt-9.0/qemu-t2-start-begin.xml"),
		"network": filepath.Join(root, "testdata/libvirt-9.0/network-hostbr-start-begin.xml"),
		"lxc":     filepath.Join(root, "testdata/libvirt-9.0-lxc/lxc-fdbtlxc1-started-begin.xml"),
	}
	for _, d := range []string{"etc/fdbhook", "etc/libvirt/hooks", "run/fdbhook", "run/libvirt/qemu", "textfile"} {
		if err := os.MkdirAll(filepath.Join(w.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.copy(t, filepath.Join(root, "packaging/fdbhook.toml"), "etc/fdbhook/fdbhook.toml")
	w.copy(t, w.fixtures["qemu"], "run/libvirt/qemu/web1.xml")
	w.shipped = shippedPaths(t, filepath.Join(root, "packaging/nfpm.yaml"))
	w.sources = sources(t, root)
	return w
}

func (w *world) copy(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, to), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

var dst = regexp.MustCompile(`(?m)^\s*dst:\s*(\S+)`)

// shippedPaths are the paths the packages install.
func shippedPaths(t *testing.T, nfpm string) []string {
	t.Helper()
	data, err := os.ReadFile(nfpm)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range dst.FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	return out
}

// sources is the text of the product's Go files and maintainer scripts.
func sources(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	for _, pattern := range []string{"pkg/*/*.go", "pkg/*/*/*.go", "cmd/*/*.go", "packaging/scripts/*.sh"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil && !strings.HasSuffix(f, "_test.go") {
				b.Write(data)
			}
		}
	}
	return b.String()
}

// TestCommands runs every command of the README, the manual page and the
// shipped configuration, in that order, in one world: the README's quick
// start edits the configuration the later commands read.
func TestCommands(t *testing.T) {
	w := newWorld(t)
	for _, doc := range []struct {
		name string
		cmds func(*testing.T, string) []command
		min  int // the fewest commands the document has: extraction works
	}{
		{"README.md", markdownCommands, 40},
		{"packaging/fdbhook.8", manCommands, 20},
		{"packaging/fdbhook.toml", configCommands, 3},
	} {
		t.Run(strings.ReplaceAll(doc.name, "/", "_"), func(t *testing.T) {
			cmds := doc.cmds(t, filepath.Join(w.root, doc.name))
			if len(cmds) < doc.min {
				t.Fatalf("%d commands found in %s, want at least %d: the extraction is broken", len(cmds), doc.name, doc.min)
			}
			counts := map[string]int{}
			for _, c := range cmds {
				how, err := w.check(c)
				if err != nil {
					t.Errorf("%s: %s: %v", c.src, c.text, err)
					continue
				}
				counts[how]++
				t.Logf("%-7s %s: %s", how, c.src, c.text)
			}
			t.Logf("%d commands: %v", len(cmds), counts)
		})
	}
}

// check runs or checks one command, and says how.
func (w *world) check(c command) (how string, err error) {
	words, err := shellWords(c.text)
	if err != nil {
		return "", err
	}
	pipeline := splitPipeline(words)
	if c.inline {
		return "--help", w.helpOf(pipeline[0])
	}
	how = "checked"
	for i, seg := range pipeline {
		env, args := w.prepare(seg)
		if len(args) == 0 {
			continue
		}
		if prog := program(args[0]); prog != "" {
			stdin := ""
			if i > 0 && isDumpXML(pipeline[i-1]) {
				stdin = w.fixtures["qemu"]
			}
			if err := w.run(prog, args[1:], env, stdin); err != nil {
				return "", err
			}
			how = "run"
			continue
		}
		if i > 0 {
			continue // a filter of fdbhook's output: grep, promtool
		}
		if how, err = w.other(args, env); err != nil || len(pipeline) == 1 {
			return how, err
		}
	}
	return how, nil
}

// splitPipeline splits words at unquoted "|" into the pipeline's
// commands. A part that starts with a flag is an alternative of the
// first command's program (the synopsis's "fdbhook --help | --version"),
// completed with it.
func splitPipeline(words []string) [][]string {
	var out [][]string
	cur := []string{}
	for _, w := range words {
		if w != "|" {
			cur = append(cur, w)
			continue
		}
		out, cur = append(out, cur), []string{}
	}
	out = append(out, cur)
	for i := 1; i < len(out); i++ {
		if len(out[i]) > 0 && strings.HasPrefix(out[i][0], "-") && len(out[0]) > 0 {
			out[i] = append([]string{out[0][0]}, out[i]...)
		}
	}
	return out
}

func isDumpXML(seg []string) bool {
	return len(seg) >= 2 && baseName(seg[0]) == "virsh" && seg[1] == "dumpxml"
}

// program maps a command's first word to the binary of this tree it
// names, or "" when it is no fdbhook program.
func program(w string) string {
	for _, h := range []string{"qemu", "network", "lxc"} {
		if strings.Contains(w, "/hooks/"+h+".d/") {
			return h + "-hook"
		}
	}
	switch b := baseName(w); b {
	case "fdbhook", "qemu-hook", "network-hook", "lxc-hook":
		return b
	}
	return ""
}

// placeholders are the words the documents write for what the reader
// fills in (BRIDGE, FILE, …), and what the suite fills in.
var placeholders = map[string]string{
	"bridge": noBridge, "file": "/run/libvirt/qemu/web1.xml", "dir": "/var/lib/fdbhook-textfile",
	"command": "status", "domain": "web1", "guest": "web1", "container": "fdbtlxc1", "network": "hostbr",
	"operation": "start", "sub-operation": "begin", "extra": "-",
}

// prepare turns one command of a pipeline into what the suite runs: its
// environment assignments, wrappers (setsid, sudo) and redirections
// taken off, and for fdbhook's programs the synopsis's brackets dropped
// and placeholders filled in; fdbhook's and libvirt's paths are moved
// into the world and bridges replaced by one that does not exist.
func (w *world) prepare(seg []string) (env, args []string) {
	for len(seg) > 0 && (isAssignment(seg[0]) || slices.Contains([]string{"setsid", "sudo", "nohup"}, seg[0])) {
		if isAssignment(seg[0]) {
			env = append(env, w.rewrite(seg[0]))
		}
		seg = seg[1:]
	}
	if len(seg) == 0 {
		return env, nil
	}
	prog := program(seg[0])
	for i := 0; i < len(seg); i++ {
		a := seg[i]
		switch {
		case a == "<" || a == ">" || a == ">>":
			i++ // the redirection's file
			continue
		case isRedirection(a):
			continue
		}
		if prog != "" && i > 0 {
			a = strings.Trim(a, "[]")
			if a == "..." || a == "" {
				continue
			}
			a, _, _ = strings.Cut(a, "|") // FILE|-: the first of the alternatives
			if v, ok := placeholders[strings.ToLower(strings.TrimSuffix(a, "..."))]; ok {
				a = v
				if v == "start" && prog == "lxc-hook" {
					a = "started" // where the lxc hook acts
				}
			}
		}
		args = append(args, w.rewrite(a))
	}
	return env, args
}

// isRedirection reports whether a word redirects the command's input or
// output (</dev/null, >>file, 2>&1) or sends it to the background (&);
// XML is not one.
func isRedirection(a string) bool {
	return a == "&" || strings.HasPrefix(a, ">") || strings.HasPrefix(a, "2>") ||
		strings.HasPrefix(a, "<") && !strings.ContainsAny(a[1:], "<>")
}

// rewrite moves fdbhook's and libvirt's paths into the world and replaces
// bridge names.
func (w *world) rewrite(a string) string {
	return strings.NewReplacer("br0", noBridge,
		"/etc/fdbhook/", w.dir+"/etc/fdbhook/", "/run/fdbhook/", w.dir+"/run/fdbhook/",
		"/run/libvirt/", w.dir+"/run/libvirt/", "/var/lib/fdbhook-textfile", w.dir+"/textfile").Replace(a)
}

// run runs one of this tree's programs in the world: hooks as a dry run
// with a fixture on stdin, the watcher as its --help, reconcile as a dry
// run. Exit 0 and 1 (a problem found, a NIC refused) pass; 2 (a command,
// flag or argument the program does not know), 3 (configuration) and 4
// (input) fail.
func (w *world) run(prog string, args, env []string, stdin string) error {
	if prog == "fdbhook" && len(args) > 0 && args[0] == "watch" {
		args = []string{"watch", "--help"}
	}
	if prog != "fdbhook" && stdin == "" {
		stdin = w.fixtures[strings.TrimSuffix(prog, "-hook")]
	}
	cmd := exec.Command(filepath.Join(w.bin, prog), args...)
	cmd.Env = append([]string{"LC_ALL=C", "PATH=" + os.Getenv("PATH"),
		"FDBHOOK_CONFIG=" + filepath.Join(w.dir, "etc/fdbhook/fdbhook.toml"),
		"FDBHOOK_RUN_DIR=" + filepath.Join(w.dir, "run/fdbhook"),
		"FDBHOOK_LIBVIRT_RUN=" + filepath.Join(w.dir, "run/libvirt"),
		"FDBHOOK_LIBVIRT_ETC=" + filepath.Join(w.dir, "etc/libvirt")}, env...)
	cmd.Env = append(cmd.Env, "FDBHOOK_DRY_RUN=1") // last: it wins
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := cmd.ProcessState.ExitCode(); code > 1 || code < 0 {
			return fmt.Errorf("%s %s: %v:\n%s", prog, strings.Join(args, " "), err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s %s did not end within 30 s", prog, strings.Join(args, " "))
	}
	return nil
}

// helpOf runs the --help of the program and command an inline mention
// names, and checks that it lists every flag the mention gives; a hook
// call named inline runs as a dry run.
func (w *world) helpOf(seg []string) error {
	_, args := w.prepare(seg)
	if len(args) == 0 {
		return fmt.Errorf("no command")
	}
	prog := program(args[0])
	if prog == "" && args[0] == "make" {
		return w.make(args[1:])
	}
	if prog != "fdbhook" && slices.ContainsFunc(args[1:], func(a string) bool { return !strings.HasPrefix(a, "-") }) {
		return w.run(prog, args[1:], nil, "") // a hook call: a dry run of it
	}
	help := []string{"--help"}
	if prog == "fdbhook" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		help = []string{args[1], "--help"}
	}
	out, err := exec.Command(filepath.Join(w.bin, prog), help...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", prog, strings.Join(help, " "), err, out)
	}
	for _, a := range args[1:] {
		if flag, _, _ := strings.Cut(a, "="); strings.HasPrefix(flag, "--") && !strings.Contains(string(out), flag) {
			return fmt.Errorf("%s %s does not list %s", prog, strings.Join(help, " "), flag)
		}
	}
	return nil
}

// make dry-runs the make targets a document names.
func (w *world) make(targets []string) error {
	cmd := exec.Command("make", append([]string{"-n", "--no-print-directory"}, targets...)...)
	cmd.Dir = w.root
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make -n %s: %v\n%s", strings.Join(targets, " "), err, out)
	}
	return nil
}

// other checks a command of another program for what it names of
// fdbhook's ("other" when it names nothing).
func (w *world) other(args, env []string) (how string, err error) {
	switch baseName(args[0]) {
	case "make":
		return "make -n", w.make(args[1:])
	case "sed":
		return "run", w.sed(args)
	case "systemctl", "journalctl":
		return "checked", w.units(args[1:])
	case "apt", "apt-get", "dnf", "dpkg", "rpm":
		return "checked", w.packageFiles(args[1:])
	case "virsh":
		if slices.Contains(args, guest.Namespace) {
			return "checked", metadata(args)
		}
	}
	return w.paths(append(env, args...))
}

// sed runs a document's edit on the world's copy of the file it edits,
// which must change.
func (w *world) sed(args []string) error {
	file := args[len(args)-1]
	if !strings.HasPrefix(file, w.dir) {
		return fmt.Errorf("sed edits %s, which the suite has no copy of", file)
	}
	before, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if out, err := exec.Command("sed", args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	after, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		return fmt.Errorf("the edit changed nothing in the shipped %s", filepath.Base(file))
	}
	return nil
}

// units checks that the units a systemctl or journalctl command names are
// the packages'.
func (w *world) units(args []string) error {
	for _, a := range args {
		if strings.HasSuffix(a, ".service") || strings.HasSuffix(a, ".timer") {
			if !slices.ContainsFunc(w.shipped, func(p string) bool { return path.Base(p) == a }) {
				return fmt.Errorf("unit %s: the packages ship no such unit", a)
			}
		}
	}
	return nil
}

// packageFiles checks that a package file a command installs matches the
// names packaging/build.sh gives the packages.
func (w *world) packageFiles(args []string) error {
	built := []string{"fdbhook_1.2.3_amd64.deb", "fdbhook-1.2.3-1.x86_64.rpm"}
	for _, a := range args {
		if !strings.Contains(a, "fdbhook") || !(strings.HasSuffix(a, ".deb") || strings.HasSuffix(a, ".rpm")) {
			continue
		}
		if !slices.ContainsFunc(built, func(b string) bool { ok, _ := path.Match(path.Base(a), b); return ok }) {
			return fmt.Errorf("%s matches none of the packages' names (%s)", a, strings.Join(built, ", "))
		}
	}
	return nil
}

// metadata checks the fdbhook metadata a virsh metadata command sets: it
// parses as a guest's, and names the NICs it says.
func metadata(args []string) error {
	i := slices.Index(args, "--set")
	if i < 0 || i+1 >= len(args) {
		return nil
	}
	set := strings.Replace(args[i+1], "<fdb", `<fdb xmlns="`+guest.Namespace+`"`, 1)
	g, err := guest.Parse([]byte("<domain type='kvm'><name>web1</name><metadata>" + set + "</metadata><devices/></domain>"))
	if err != nil {
		return fmt.Errorf("the metadata it sets: %w", err)
	}
	for _, m := range regexp.MustCompile(`mac="([^"]+)"`).FindAllStringSubmatch(set, -1) {
		if _, ok := g.Interfaces[m[1]]; !ok {
			return fmt.Errorf("the metadata it sets does not reach NIC %s", m[1])
		}
	}
	return nil
}

var ourPath = regexp.MustCompile(`(/[a-z]+)+/fdbhook[a-z0-9/._-]*|packaging/[A-Za-z0-9/._-]+`)

// paths checks that every fdbhook path another program's command names
// exists: shipped by the packages, used by the product, or, for a path of
// this tree, there.
func (w *world) paths(args []string) (how string, err error) {
	for _, a := range args {
		for _, p := range ourPath.FindAllString(strings.ReplaceAll(a, w.dir, ""), -1) {
			how = "checked"
			switch {
			case strings.HasPrefix(p, "packaging/"):
				if _, err := os.Stat(filepath.Join(w.root, p)); err != nil {
					return "", fmt.Errorf("%s is not in this tree", p)
				}
			case slices.ContainsFunc(w.shipped, func(s string) bool { return s == p || strings.HasPrefix(s, p+"/") }):
			case strings.Contains(w.sources, `"`+p+`"`) || strings.Contains(w.sources, `"`+path.Base(p)+`"`):
			default:
				return "", fmt.Errorf("%s: neither shipped nor used by fdbhook", p)
			}
		}
	}
	if how == "" {
		how = "other"
	}
	return how, nil
}

// shellWords splits a command line as the shell would: blanks separate
// words, quotes keep them together, a backslash escapes the next
// character outside single quotes, and a word starting with # starts a
// comment. "|" stays a word of its own when written apart.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unbalanced %c", c)
			}
			q := line[i+1 : i+1+end]
			if c == '"' {
				q = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`).Replace(q)
			}
			cur.WriteString(q)
			inWord, i = true, i+1+end
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(line[i+1])
			inWord, i = true, i+1
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestCatchesStaleCommands: what the suite must refuse, each a way a
// document goes stale or was wrong.
func TestCatchesStaleCommands(t *testing.T) {
	w := newWorld(t)
	for _, c := range []command{
		{text: "fdbhook reconcile --dryrun"},                     // a renamed flag
		{text: "fdbhook reconcil", inline: true},                 // a renamed command
		{text: "fdbhook status --jason", inline: true},           // a flag the help does not list
		{text: "qemu-hook reconcile", inline: true},              // the admin command is fdbhook
		{text: "/usr/libexec/fdbhook/qemu-hook doctor"},          // likewise, as a code line
		{text: "systemctl enable --now fdbhook-watch.service"},   // no such unit
		{text: "apt install ./fdbhook_1.0.0.deb"},                // not the packages' name
		{text: "make demos"},                                     // no such target
		{text: "kill $(cat /run/fdbhook/watcher.pid)"},           // no such file
		{text: "sed -i s/^bridgez/x/ /etc/fdbhook/fdbhook.toml"}, // an edit that does nothing
		{text: `virsh metadata web1 urn:fdbhook:1 --set '<fdb><interface mac="52:54:00:aa:cc:01" manage="maybe"/></fdb>'`},
	} {
		if how, err := w.check(c); err == nil {
			t.Errorf("%q (inline %v) passed (%s), want it refused", c.text, c.inline, how)
		}
	}
}
