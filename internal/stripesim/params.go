package stripesim

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Stripe's API takes form-encoded parameters with brackets for nesting:
// business_profile[url]=..., capabilities[transfers][requested]=true,
// enabled_events[0]=account.updated. The simulator decodes them into a tree
// and checks the tree against a schema per endpoint, refusing unknown
// parameters and wrong types the way Stripe does, so that it can never accept
// a request that real Stripe (or stripe-mock's spec) would refuse.

// param is one node of the decoded parameter tree: a value or children.
type param struct {
	value    *string
	children map[string]*param
}

// parseParams decodes form values into a tree. A key that is both a value
// and a hash ("a=1&a[b]=2") is refused.
func parseParams(form url.Values) (*param, *apiError) {
	root := &param{children: map[string]*param{}}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		path, ok := splitKey(key)
		if !ok {
			return nil, invalidParam(key, "Invalid parameter name: "+key)
		}
		values := form[key]
		// "a[]=x&a[]=y" is an array written without indexes.
		if path[len(path)-1] == "" {
			path = path[:len(path)-1]
			for i, v := range values {
				if err := root.set(append(append([]string{}, path...), strconv.Itoa(i)), v, key); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := root.set(path, values[len(values)-1], key); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// splitKey turns "a[b][c]" into [a b c].
func splitKey(key string) ([]string, bool) {
	name, rest, _ := strings.Cut(key, "[")
	if name == "" {
		return nil, false
	}
	path := []string{name}
	if rest == "" {
		return path, !strings.Contains(key, "[")
	}
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	return path, true
}

func (p *param) set(path []string, value, key string) *apiError {
	n := p
	for i, seg := range path {
		if n.value != nil {
			return invalidParam(displayName(path[:i]), "Invalid object")
		}
		if n.children == nil {
			n.children = map[string]*param{}
		}
		child := n.children[seg]
		if child == nil {
			child = &param{}
			n.children[seg] = child
		}
		n = child
	}
	if n.children != nil {
		return invalidParam(key, "Invalid object")
	}
	n.value = &value
	return nil
}

// displayName writes a path the way Stripe names parameters in errors.
func displayName(path []string) string {
	if len(path) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(path[0])
	for _, seg := range path[1:] {
		b.WriteString("[" + seg + "]")
	}
	return b.String()
}

// kind is the type of a schema field.
type kind int

const (
	kString kind = iota + 1
	kBool
	kInt
	kEnum
	kHash       // fixed fields
	kMap        // free string keys with string values (metadata)
	kArray      // indexed elements
	kIntOrRange // an integer, or a hash of gt/gte/lt/lte (list filters)
)

// field is the schema of one parameter.
type field struct {
	kind     kind
	enum     []string
	fields   map[string]*field // kHash
	elem     *field            // kArray
	required bool
	// unsettable: an empty string is a request to unset it (Stripe's rule);
	// otherwise an empty string is refused.
	unsettable bool
}

func str() *field                     { return &field{kind: kString} }
func unsettableStr() *field           { return &field{kind: kString, unsettable: true} }
func boolean() *field                 { return &field{kind: kBool} }
func integer() *field                 { return &field{kind: kInt} }
func enum(values ...string) *field    { return &field{kind: kEnum, enum: values} }
func hash(f map[string]*field) *field { return &field{kind: kHash, fields: f} }
func array(elem *field) *field        { return &field{kind: kArray, elem: elem} }
func metadataField() *field           { return &field{kind: kMap, unsettable: true} }
func required(f *field) *field        { c := *f; c.required = true; return &c }

// validate checks a decoded tree against a hash schema and returns the first
// problem, named as Stripe names it. The messages are Stripe's words, as its
// API answers them and public test suites and bug reports quote them:
// "Received unknown parameter: x", "Missing required param: x.", "Invalid
// integer: x", "You passed an empty string for 'x'. ...". Where Stripe finds
// several unknown parameters it names them all; the simulator names the first.
func validate(root *param, schema map[string]*field) *apiError {
	return validateHash(root, schema, nil)
}

func validateHash(p *param, schema map[string]*field, path []string) *apiError {
	names := make([]string, 0, len(p.children))
	for name := range p.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, ok := schema[name]
		full := append(append([]string{}, path...), name)
		if !ok {
			return &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_unknown", param: displayName(full),
				message: "Received unknown parameter: " + displayName(full)}
		}
		if err := validateField(p.children[name], f, full); err != nil {
			return err
		}
	}
	reqNames := make([]string, 0)
	for name, f := range schema {
		if f.required {
			reqNames = append(reqNames, name)
		}
	}
	sort.Strings(reqNames)
	for _, name := range reqNames {
		if _, ok := p.children[name]; !ok {
			full := displayName(append(append([]string{}, path...), name))
			return &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_missing", param: full,
				message: "Missing required param: " + full + "."}
		}
	}
	return nil
}

func validateField(p *param, f *field, path []string) *apiError {
	name := displayName(path)
	switch f.kind {
	case kHash:
		if p.value != nil {
			if *p.value == "" && f.unsettable {
				return nil
			}
			return invalidParam(name, "Invalid object")
		}
		return validateHash(p, f.fields, path)
	case kMap:
		if p.value != nil {
			if *p.value == "" {
				return nil // metadata="" unsets every key
			}
			return invalidParam(name, "Invalid object")
		}
		for k, child := range p.children {
			if child.value == nil {
				return invalidParam(displayName(append(path, k)), "Invalid string")
			}
			if len(k) > 40 {
				return invalidParam(displayName(append(path, k)), "Metadata keys can have up to 40 characters.")
			}
			if len(*child.value) > 500 {
				return invalidParam(displayName(append(path, k)), "Metadata values can have up to 500 characters.")
			}
		}
		if len(p.children) > 50 {
			return invalidParam(name, "You can specify up to 50 keys in metadata.")
		}
		return nil
	case kArray:
		if p.value != nil {
			if *p.value == "" {
				return nil
			}
			return invalidParam(name, "Invalid array")
		}
		for k, child := range p.children {
			if _, err := strconv.Atoi(k); err != nil {
				return invalidParam(name, "Invalid array")
			}
			if err := validateField(child, f.elem, append(path, k)); err != nil {
				return err
			}
		}
		return nil
	case kIntOrRange:
		if p.value != nil {
			return validateField(p, integer(), path)
		}
		return validateHash(p, map[string]*field{"gt": integer(), "gte": integer(), "lt": integer(), "lte": integer()}, path)
	}
	if p.value == nil {
		return invalidParam(name, "Invalid "+scalarName(f.kind))
	}
	v := *p.value
	if v == "" {
		if f.unsettable {
			return nil
		}
		return &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_invalid_empty", param: name,
			message: fmt.Sprintf("You passed an empty string for '%s'. We assume empty values are an attempt to unset a parameter; "+
				"however '%s' cannot be unset. You should remove '%s' from your request or supply a non-empty value.", name, name, name)}
	}
	switch f.kind {
	case kBool:
		if v != "true" && v != "false" {
			return invalidParam(name, "Invalid boolean: "+v)
		}
	case kInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_invalid_integer", param: name,
				message: "Invalid integer: " + v}
		}
	case kEnum:
		for _, e := range f.enum {
			if v == e {
				return nil
			}
		}
		return invalidParam(name, fmt.Sprintf("Invalid %s: must be one of %s", path[len(path)-1], oneOf(f.enum)))
	}
	return nil
}

func scalarName(k kind) string {
	switch k {
	case kBool:
		return "boolean"
	case kInt:
		return "integer"
	}
	return "string"
}

// oneOf writes "a, b, or c" as Stripe's enum errors do.
func oneOf(values []string) string {
	switch len(values) {
	case 1:
		return values[0]
	case 2:
		return values[0] + " or " + values[1]
	}
	return strings.Join(values[:len(values)-1], ", ") + ", or " + values[len(values)-1]
}

// Accessors on a validated tree.

func (p *param) child(path ...string) *param {
	n := p
	for _, seg := range path {
		if n == nil || n.children == nil {
			return nil
		}
		n = n.children[seg]
	}
	return n
}

// str returns the value at path and whether it was given.
func (p *param) str(path ...string) (string, bool) {
	n := p.child(path...)
	if n == nil || n.value == nil {
		return "", false
	}
	return *n.value, true
}

func (p *param) boolean(path ...string) (bool, bool) {
	v, ok := p.str(path...)
	return v == "true", ok
}

func (p *param) int(path ...string) (int64, bool) {
	v, ok := p.str(path...)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// strings returns the elements of an array parameter in index order.
func (p *param) strings(path ...string) []string {
	n := p.child(path...)
	if n == nil || n.children == nil {
		return nil
	}
	idx := make([]int, 0, len(n.children))
	for k := range n.children {
		i, _ := strconv.Atoi(k)
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		if c := n.children[strconv.Itoa(i)]; c != nil && c.value != nil {
			out = append(out, *c.value)
		}
	}
	return out
}

// keys returns the child names of a hash parameter, sorted.
func (p *param) keys(path ...string) []string {
	n := p.child(path...)
	if n == nil {
		return nil
	}
	out := make([]string, 0, len(n.children))
	for k := range n.children {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
