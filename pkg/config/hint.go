package config

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// A key of the file whose value has the wrong type gets an error that says
// what was meant, with the line: "line 1: bridges = "br0": a list of bridge
// names: write bridges = ["br0"]". The decoder's own message ("destination
// has type slice") speaks of Go, not of the file.

// kind is what a key's value must be.
type kind int

const (
	kString kind = iota
	kList
	kBool
	kInt
	kTable
	kTables // a table of tables: [bridge.NAME]
)

// keyKinds are the file's keys (bridge.* stands for each [bridge.NAME]),
// with their kind and how a right value is written.
var keyKinds = map[string]struct {
	kind kind
	want string // what the value is, in words
	eg   string // an example of the right value
}{
	"bridges":                  {kList, "a list of bridge names", `["br0"]`},
	"networks":                 {kList, "a list of libvirt network names", `["default"]`},
	"on_error":                 {kString, `"fail" or "warn", quoted`, `"fail"`},
	"log_level":                {kString, "a quoted level", `"info"`},
	"bridge":                   {kTables, "a table per bridge", ""},
	"bridge.*":                 {kTable, "a table of settings for one bridge", ""},
	"bridge.*.vlan_filtering":  {kString, `"enable" or "leave", quoted`, `"enable"`},
	"bridge.*.lock_ports":      {kBool, "true or false, not quoted", "true"},
	"bridge.*.sticky":          {kBool, "true or false, not quoted", "true"},
	"bridge.*.undeclared_macs": {kString, `"ignore", "report" or "follow", quoted`, `"report"`},
	"bridge.*.follow_max":      {kInt, "a whole number, not quoted", "8"},
	"watch":                    {kTable, "a table", ""},
	"watch.resync":             {kString, "a quoted duration", `"60s"`},
	"watch.metrics":            {kString, "a quoted address", `"127.0.0.1:9568"`},
}

// typeHint looks for a key of text whose value has the wrong type and
// says what was meant; nil when it finds none (or text does not decode).
func typeHint(text string) error {
	var m map[string]any
	if _, err := toml.Decode(text, &m); err != nil {
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if err := hintFor(text, []string{key}, m[key]); err != nil {
			return err
		}
	}
	return nil
}

// hintFor checks the value v of the key at path, and what it holds.
func hintFor(text string, path []string, v any) error {
	pattern := strings.Join(path, ".")
	if len(path) >= 2 && path[0] == "bridge" {
		pattern = strings.Join(append([]string{"bridge", "*"}, path[2:]...), ".")
	}
	spec, known := keyKinds[pattern]
	if !known {
		return nil // an unknown key: the decoder's own check says so
	}
	if spec.kind == kTables {
		if _, ok := v.(map[string]any); ok {
			spec.kind = kTable // each of its values is checked as bridge.*
		}
	}
	if ok := hasKind(v, spec.kind); !ok {
		return wrongType(text, path, v, spec.kind, spec.want, spec.eg)
	}
	if t, isTable := v.(map[string]any); isTable {
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := hintFor(text, append(slices.Clone(path), k), t[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasKind(v any, k kind) bool {
	switch k {
	case kString:
		_, ok := v.(string)
		return ok
	case kBool:
		_, ok := v.(bool)
		return ok
	case kInt:
		_, ok := v.(int64)
		return ok
	case kList:
		l, ok := v.([]any)
		return ok && !slices.ContainsFunc(l, func(x any) bool { _, s := x.(string); return !s })
	case kTable:
		_, ok := v.(map[string]any)
		return ok
	}
	return false // kTables that is no table at all
}

// wrongType says, for the key at path, what the admin wrote, what is
// wanted and how to write it.
func wrongType(text string, path []string, v any, k kind, want, eg string) error {
	key := strings.Join(path, ".")
	line, written := keyLine(text, path)
	where := ""
	if line > 0 {
		where = fmt.Sprintf("line %d: ", line)
	}
	if written == "" {
		written = key
	}
	var fix string
	switch k {
	case kList:
		fix = key + " = " + eg
		if s, ok := v.(string); ok {
			fix = key + " = [" + strconv.Quote(s) + "]"
		}
	case kBool:
		fix = path[len(path)-1] + " = " + eg
		if s, ok := v.(string); ok && (s == "false" || s == "no") {
			fix = path[len(path)-1] + " = false"
		}
	case kInt:
		fix = path[len(path)-1] + " = " + eg
		if s, ok := v.(string); ok {
			if _, err := strconv.Atoi(s); err == nil {
				fix = path[len(path)-1] + " = " + s
			}
		}
	case kTables:
		fix = "[bridge.br0] with the bridge's settings below it"
		if l, ok := v.([]any); ok && len(l) > 0 {
			name := fmt.Sprint(l[0])
			fix = fmt.Sprintf("[bridge.%s] for its settings, and list the bridges to manage in bridges = [%s]", name, strconv.Quote(name))
		}
	case kTable:
		fix = "[" + key + "] on a line of its own, its keys below it"
		if path[0] == "bridge" {
			fix += `, such as vlan_filtering = "enable"`
		}
	default:
		fix = path[len(path)-1] + " = " + eg
	}
	return fmt.Errorf("%s%s: %s is %s: write %s", where, written, key, want, fix)
}

// keyLine finds where text sets the key at path, top-level or in its
// table ([a.b] then c = …, or a.b.c = …), and returns the line number and
// the line as written; 0 and "" when it cannot tell.
func keyLine(text string, path []string) (int, string) {
	want := strings.Join(path, ".")
	table := ""
	for i, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(raw)
		if strings.HasPrefix(l, "[") {
			table = strings.Trim(strings.ReplaceAll(l, " ", ""), "[]")
			if table == want {
				return i + 1, l
			}
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		full := strings.ReplaceAll(strings.TrimSpace(k), " ", "")
		if table != "" {
			full = table + "." + full
		}
		if full == want {
			return i + 1, l
		}
	}
	return 0, ""
}

// Where says where the file at path sets the key at path ("line 3 of
// /etc/fdbhook/fdbhook.toml"), or just names the file when it cannot tell.
func Where(file string, key ...string) string {
	data, err := os.ReadFile(file)
	if err == nil {
		if line, _ := keyLine(string(data), key); line > 0 {
			return fmt.Sprintf("line %d of %s", line, file)
		}
	}
	return file
}
