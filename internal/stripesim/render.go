package stripesim

import "encoding/json"

// render turns a stripe-go v76 object into the JSON Stripe sends. stripe-go's
// types have no way to say null: a string Stripe leaves unset marshals as ""
// and a missing object as null. Stripe sends null for both, so empty strings
// become null here (nothing in the objects the simulator renders uses "" as
// a value).
func render(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic("stripesim: cannot marshal " + err.Error())
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic("stripesim: cannot unmarshal " + err.Error())
	}
	nullEmpty(m)
	return m
}

func nullEmpty(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok && s == "" {
				t[k] = nil
				continue
			}
			nullEmpty(child)
		}
	case []any:
		for _, child := range t {
			nullEmpty(child)
		}
	}
}
