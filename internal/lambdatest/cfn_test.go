package lambdatest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the module root: tests run in internal/lambdatest.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

// requireArtifact stops a test whose prerequisite (a server, a build output)
// is missing: skip locally, fail in CI, as internal/testenv does.
func requireArtifact(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (in CI every check must run: make test provides it)", msg)
	}
	t.Skip(msg)
}

// Template is template.yaml as CloudFormation reads it, with the short-form
// intrinsics (!Ref, !Sub, ...) turned into their long forms ({"Ref": ...},
// {"Fn::Sub": ...}) and its Fn::ForEach expanded, so tests can follow
// references.
type Template struct {
	Globals    map[string]any
	Parameters map[string]map[string]any
	Conditions map[string]any
	Mappings   map[string]any
	Resources  map[string]Resource
	Outputs    map[string]map[string]any
}

// Resource is one entry of Resources.
type Resource struct {
	Type                string
	Condition           string
	DeletionPolicy      string
	UpdateReplacePolicy string
	DependsOn           []string // one name or a list, as a list
	Metadata            map[string]any
	Properties          map[string]any
}

func loadTemplate(t testing.TB) *Template {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := parseTemplate(raw)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return tpl
}

func parseTemplate(raw []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	tree, err := convert(&doc)
	if err != nil {
		return nil, err
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a mapping")
	}
	tpl := &Template{
		Globals:    asMap(top["Globals"]),
		Conditions: asMap(top["Conditions"]),
		Mappings:   asMap(top["Mappings"]),
		Parameters: map[string]map[string]any{},
		Resources:  map[string]Resource{},
		Outputs:    map[string]map[string]any{},
	}
	resources, err := tpl.expandForEach(asMap(top["Resources"]), nil)
	if err != nil {
		return nil, err
	}
	for name, p := range asMap(top["Parameters"]) {
		tpl.Parameters[name] = asMap(p)
	}
	for name, o := range asMap(top["Outputs"]) {
		tpl.Outputs[name] = asMap(o)
	}
	for id, r := range resources {
		m := asMap(r)
		var dependsOn []string
		for _, d := range append(asList(m["DependsOn"]), m["DependsOn"]) {
			if name := asString(d); name != "" {
				dependsOn = append(dependsOn, name)
			}
		}
		tpl.Resources[id] = Resource{
			DependsOn:           dependsOn,
			Type:                asString(m["Type"]),
			Condition:           asString(m["Condition"]),
			DeletionPolicy:      asString(m["DeletionPolicy"]),
			UpdateReplacePolicy: asString(m["UpdateReplacePolicy"]),
			Metadata:            asMap(m["Metadata"]),
			Properties:          asMap(m["Properties"]),
		}
	}
	return tpl, nil
}

// expandForEach does to a section what the AWS::LanguageExtensions transform
// does (as cfn-lint implements it, which scripts/expand-template.py runs for
// sam local): each Fn::ForEach::<Loop>: [Var, [values...], {output}] becomes
// one copy of output per value, with Var substituted in keys, in Ref and in
// Fn::Sub, and the Fn::FindInMap it feeds looked up.
func (t *Template) expandForEach(section map[string]any, vars map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for key, v := range section {
		if !strings.HasPrefix(key, "Fn::ForEach::") {
			out[substituteVars(key, vars)] = t.substitute(v, vars)
			continue
		}
		loop := asList(v)
		if len(loop) != 3 {
			return nil, fmt.Errorf("%s: want [Identifier, Collection, Output]", key)
		}
		name := asString(loop[0])
		for _, item := range asList(loop[1]) {
			inner := maps.Clone(vars)
			if inner == nil {
				inner = map[string]string{}
			}
			inner[name] = asString(item)
			expanded, err := t.expandForEach(asMap(loop[2]), inner)
			if err != nil {
				return nil, err
			}
			for k, r := range expanded {
				if _, dup := out[k]; dup {
					return nil, fmt.Errorf("%s makes %s twice", key, k)
				}
				out[k] = r
			}
		}
	}
	return out, nil
}

var loopVar = regexp.MustCompile(`[$&]\{([A-Za-z0-9]+)\}`)

// substituteVars replaces ${Var} (and &{Var}) of the loop variables in s.
func substituteVars(s string, vars map[string]string) string {
	return loopVar.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

func (t *Template) substitute(v any, vars map[string]string) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = t.substitute(item, vars)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, item := range x {
			out[substituteVars(k, vars)] = t.substitute(item, vars)
		}
		switch fn, arg := singleKey(out); fn {
		case "Ref":
			if val, isVar := vars[asString(arg)]; isVar {
				return val
			}
		case "Fn::Sub":
			// A Sub left with nothing to substitute is its string (so that
			// Ref and Fn::GetAtt can take one as a name).
			if s, ok := arg.(string); ok {
				if s = substituteVars(s, vars); !subVar.MatchString(s) {
					return s
				}
				out[fn] = s
			} else if l := asList(arg); len(l) == 2 {
				out[fn] = []any{substituteVars(asString(l[0]), vars), l[1]}
			}
		case "Fn::FindInMap":
			if l := asList(arg); len(l) == 3 {
				if val, found := asMap(asMap(t.Mappings[asString(l[0])])[asString(l[1])])[asString(l[2])]; found {
					return val
				}
			}
		}
		return out
	}
	return v
}

// singleKey returns the one key of an intrinsic and its argument.
func singleKey(m map[string]any) (string, any) {
	if len(m) != 1 {
		return "", nil
	}
	for k, v := range m {
		return k, v
	}
	return "", nil
}

// convert turns a YAML node into maps, slices and scalars, expanding
// CloudFormation's short-form tags.
func convert(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if isIntrinsicTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !isIntrinsicTag(n.Tag) {
		return v, nil
	}
	switch name := strings.TrimPrefix(n.Tag, "!"); name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

func isIntrinsicTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case nil:
		return nil
	default:
		return []any{l} // IAM allows a single value where a list fits
	}
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	default:
		return fmt.Sprint(s)
	}
}

// refOf returns X for {"Ref": X}.
func refOf(v any) string { return asString(asMap(v)["Ref"]) }

// getAttOf returns (X, Attr) for {"Fn::GetAtt": [X, Attr]}.
func getAttOf(v any) (string, string) {
	l := asList(asMap(v)["Fn::GetAtt"])
	if len(l) != 2 {
		return "", ""
	}
	return asString(l[0]), asString(l[1])
}

// ResourcesOfType returns the logical ids of every resource of type typ, sorted.
func (t *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// FunctionProperty returns a function's property with SAM's Globals applied:
// maps are merged (the function's keys win), anything else is replaced.
func (t *Template) FunctionProperty(id, name string) any {
	global := asMap(t.Globals["Function"])[name]
	own, ok := t.Resources[id].Properties[name]
	gm, gIsMap := global.(map[string]any)
	om, oIsMap := own.(map[string]any)
	switch {
	case ok && gIsMap && oIsMap && !isIntrinsic(om):
		merged := map[string]any{}
		for k, v := range gm {
			merged[k] = v
		}
		for k, v := range om {
			if sub, isSub := v.(map[string]any); isSub && !isIntrinsic(sub) {
				if gsub, ok := gm[k].(map[string]any); ok {
					inner := map[string]any{}
					for k2, v2 := range gsub {
						inner[k2] = v2
					}
					for k2, v2 := range sub {
						inner[k2] = v2
					}
					v = inner
				}
			}
			merged[k] = v
		}
		return merged
	case ok:
		return own
	default:
		return global
	}
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// Env returns a function's environment variables (Globals merged).
func (t *Template) Env(id string) map[string]any {
	return asMap(asMap(t.FunctionProperty(id, "Environment"))["Variables"])
}

// evaluator resolves intrinsics the way CloudFormation would for one set of
// parameter values, with fixed stand-ins for resource references.
type evaluator struct {
	t      *Template
	params map[string]any    // string, or []string for list parameters
	refs   map[string]string // Ref of a resource, or a pseudo parameter
	attrs  map[string]string // "Resource.Attr" for Fn::GetAtt and ${R.A}
}

// newEvaluator uses each parameter's default, then overrides.
func newEvaluator(t *Template, overrides map[string]string, refs, attrs map[string]string) *evaluator {
	e := &evaluator{t: t, params: map[string]any{}, refs: refs, attrs: attrs}
	for name, p := range t.Parameters {
		v, has := p["Default"]
		if o, ok := overrides[name]; ok {
			v, has = o, true
		}
		if !has {
			continue
		}
		s := asString(v)
		if asString(p["Type"]) == "CommaDelimitedList" {
			e.params[name] = strings.Split(s, ",")
		} else {
			e.params[name] = s
		}
	}
	return e
}

func (e *evaluator) eval(v any) (any, error) {
	switch x := v.(type) {
	case string, nil:
		return x, nil
	case bool, int, float64:
		return asString(x), nil
	case []any:
		out := make([]any, 0, len(x))
		for _, item := range x {
			r, err := e.eval(item)
			if err != nil {
				return nil, err
			}
			if asMap(item)["Ref"] != nil {
				if l, ok := r.([]string); ok { // a list parameter spliced into a list
					for _, s := range l {
						out = append(out, s)
					}
					continue
				}
			}
			out = append(out, r)
		}
		return out, nil
	case map[string]any:
		if !isIntrinsic(x) {
			return nil, fmt.Errorf("cannot evaluate a map: %v", x)
		}
		for fn, arg := range x {
			return e.intrinsic(fn, arg)
		}
	}
	return nil, fmt.Errorf("cannot evaluate %T", v)
}

func (e *evaluator) str(v any) (string, error) {
	r, err := e.eval(v)
	if err != nil {
		return "", err
	}
	s, ok := r.(string)
	if !ok {
		return "", fmt.Errorf("%v is not a string", r)
	}
	return s, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (e *evaluator) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name := asString(arg)
		if p, ok := e.params[name]; ok {
			if l, isList := p.([]string); isList {
				return l, nil
			}
			return p, nil
		}
		if r, ok := e.refs[name]; ok {
			return r, nil
		}
		return nil, fmt.Errorf("no value for Ref %s", name)
	case "Fn::GetAtt":
		res, attr := getAttOf(map[string]any{fn: arg})
		if v, ok := e.attrs[res+"."+attr]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("no value for GetAtt %s.%s", res, attr)
	case "Fn::Sub":
		var vars map[string]any
		format, ok := arg.(string)
		if !ok {
			l := asList(arg)
			if len(l) != 2 {
				return nil, fmt.Errorf("bad Fn::Sub %v", arg)
			}
			format, vars = asString(l[0]), asMap(l[1])
		}
		var firstErr error
		out := subVar.ReplaceAllStringFunc(format, func(m string) string {
			name := m[2 : len(m)-1]
			var v any = map[string]any{"Ref": name}
			if local, ok := vars[name]; ok {
				v = local
			} else if res, attr, dotted := strings.Cut(name, "."); dotted {
				v = map[string]any{"Fn::GetAtt": []any{res, attr}}
			}
			s, err := e.str(v)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return s
		})
		return out, firstErr
	case "Fn::If":
		l := asList(arg)
		if len(l) != 3 {
			return nil, fmt.Errorf("bad Fn::If %v", arg)
		}
		cond, err := e.condition(e.t.Conditions[asString(l[0])])
		if err != nil {
			return nil, fmt.Errorf("condition %s: %w", l[0], err)
		}
		if cond {
			return e.eval(l[1])
		}
		return e.eval(l[2])
	case "Fn::Join":
		l := asList(arg)
		if len(l) != 2 {
			return nil, fmt.Errorf("bad Fn::Join %v", arg)
		}
		items, err := e.eval(l[1])
		if err != nil {
			return nil, err
		}
		var parts []string
		switch it := items.(type) {
		case []string:
			parts = it
		case []any:
			for _, p := range it {
				parts = append(parts, asString(p))
			}
		}
		return strings.Join(parts, asString(l[0])), nil
	case "Fn::Split":
		l := asList(arg)
		s, err := e.str(l[1])
		if err != nil {
			return nil, err
		}
		return strings.Split(s, asString(l[0])), nil
	case "Fn::Select":
		l := asList(arg)
		i, err := strconv.Atoi(asString(l[0]))
		if err != nil {
			return nil, err
		}
		items, err := e.eval(l[1])
		if err != nil {
			return nil, err
		}
		switch it := items.(type) {
		case []string:
			if i < len(it) {
				return it[i], nil
			}
		case []any:
			if i < len(it) {
				return it[i], nil
			}
		}
		return nil, fmt.Errorf("Fn::Select index %d out of range", i)
	}
	return nil, fmt.Errorf("unsupported intrinsic %s", fn)
}

func (e *evaluator) condition(v any) (bool, error) {
	m := asMap(v)
	for fn, arg := range m {
		l := asList(arg)
		switch fn {
		case "Condition":
			return e.condition(e.t.Conditions[asString(arg)])
		case "Fn::Not":
			b, err := e.condition(l[0])
			return !b, err
		case "Fn::And", "Fn::Or":
			want := fn == "Fn::Or"
			for _, c := range l {
				b, err := e.condition(c)
				if err != nil || b == want {
					return want, err
				}
			}
			return !want, nil
		case "Fn::Equals":
			a, err := e.eval(l[0])
			if err != nil {
				return false, err
			}
			b, err := e.eval(l[1])
			return fmt.Sprint(a) == fmt.Sprint(b), err
		}
	}
	return false, fmt.Errorf("unsupported condition %v", v)
}
