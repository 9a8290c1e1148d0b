package quicklane

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Body validates the route's JSON body in the core against the JSON Schema
// of v's type (a struct, or a pointer to one), before Go runs: a body that is
// not JSON gets 400, an invalid one 422 with FastAPI's error list
// ({"detail":[{"type","loc","msg","input"}]}). The schema comes from the
// fields' json tags (name, "-", omitempty) and Gin's binding tags: required,
// min/max (length for strings and slices, value for numbers), gte/lte/gt/lt,
// len and oneof. Unknown fields are allowed, as encoding/json allows them.
// Use c.BindJSON in the handler to decode the validated body.
func Body(v any) Rule {
	schema, err := schemaOf(reflect.TypeOf(v), false)
	return bodySchemaRule(schema, err)
}

// BodyStrict is Body, with unknown fields refused at every level (422
// extra_forbidden), as pydantic's extra="forbid" and the JSON Schema keyword
// additionalProperties: false; decode with a json.Decoder using
// DisallowUnknownFields if the handler wants the same.
func BodyStrict(v any) Rule {
	schema, err := schemaOf(reflect.TypeOf(v), true)
	return bodySchemaRule(schema, err)
}

// BodySchema validates the JSON body against a JSON Schema given as text
// (draft 2020-12 subset; see docs/capi.md).
func BodySchema(jsonSchema string) Rule { return bodySchemaRule(jsonSchema, nil) }

// Params types path and query parameters in the core (422 before Go runs),
// e.g. Params(`{"id":{"in":"path","type":"integer","minimum":1},
// "limit":{"in":"query","type":"integer","maximum":100}}`).
func Params(specJSON string) Rule {
	return func(r *routeRules) { r.params = specJSON }
}

func bodySchemaRule(schema string, err error) Rule {
	return func(r *routeRules) {
		r.body = schema
		if err != nil && r.err == nil {
			r.err = err
		}
	}
}

var timeType = reflect.TypeOf(time.Time{})

func schemaOf(t reflect.Type, strict bool) (string, error) {
	if t == nil {
		return "", fmt.Errorf("quicklane: Body(nil): give a struct value, e.g. Body(Item{})")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return "", fmt.Errorf("quicklane: Body(%v): a struct type is needed", t)
	}
	s, err := typeSchema(t, map[reflect.Type]bool{}, strict)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(s)
	return string(b), err
}

func typeSchema(t reflect.Type, seen map[reflect.Type]bool, strict bool) (map[string]any, error) {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	var s map[string]any
	switch {
	case t == timeType:
		s = map[string]any{"type": "string"}
	case t.Kind() == reflect.String:
		s = map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		s = map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s = map[string]any{"type": "integer"}
		if t.Kind() >= reflect.Uint {
			s["minimum"] = 0
		}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		s = map[string]any{"type": "number"}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		s = map[string]any{"type": "string"} // []byte is base64 text in JSON
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		items, err := typeSchema(t.Elem(), seen, strict)
		if err != nil {
			return nil, err
		}
		s = map[string]any{"type": "array", "items": items}
		nullable = nullable || t.Kind() == reflect.Slice // a nil slice encodes as null
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		vals, err := typeSchema(t.Elem(), seen, strict)
		if err != nil {
			return nil, err
		}
		s = map[string]any{"type": "object", "additionalProperties": vals}
	case t.Kind() == reflect.Interface:
		return map[string]any{}, nil
	case t.Kind() == reflect.Struct:
		if seen[t] {
			return nil, fmt.Errorf("quicklane: Body: %v refers to itself; give a JSON Schema with BodySchema", t)
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs, err := typeSchema(f.Type, seen, strict)
			if err != nil {
				return nil, err
			}
			req, err := applyBinding(fs, f)
			if err != nil {
				return nil, err
			}
			if req {
				required = append(required, name)
			}
			props[name] = fs
		}
		s = map[string]any{"type": "object", "properties": props}
		if strict {
			s["additionalProperties"] = false
		}
		if len(required) > 0 {
			s["required"] = required
		}
	default:
		return nil, fmt.Errorf("quicklane: Body: no JSON Schema for %v", t)
	}
	if nullable {
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
		}
	}
	return s, nil
}

// applyBinding reads Gin's binding tag into the field's schema; true when
// the field is required.
func applyBinding(s map[string]any, f reflect.StructField) (bool, error) {
	tag := f.Tag.Get("binding")
	if tag == "" {
		return false, nil
	}
	required := false
	typ, _ := s["type"].(string)
	if ts, ok := s["type"].([]string); ok {
		typ = ts[0]
	}
	lengthKeys := map[string][2]string{"string": {"minLength", "maxLength"}, "array": {"minItems", "maxItems"}}
	for _, rule := range strings.Split(tag, ",") {
		key, val, _ := strings.Cut(strings.TrimSpace(rule), "=")
		num := func() (float64, error) {
			n, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return 0, fmt.Errorf("quicklane: Body: field %s: binding %q needs a number", f.Name, rule)
			}
			return n, nil
		}
		switch key {
		case "required":
			required = true
		case "omitempty", "":
		case "min", "max", "len":
			n, err := num()
			if err != nil {
				return false, err
			}
			if lk, ok := lengthKeys[typ]; ok {
				if key != "max" {
					s[lk[0]] = int(n)
				}
				if key != "min" {
					s[lk[1]] = int(n)
				}
			} else {
				if key != "max" {
					s["minimum"] = n
				}
				if key != "min" {
					s["maximum"] = n
				}
			}
		case "gte", "lte", "gt", "lt":
			n, err := num()
			if err != nil {
				return false, err
			}
			s[map[string]string{"gte": "minimum", "lte": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}[key]] = n
		case "oneof":
			var vals []any
			for _, v := range strings.Fields(val) {
				if typ == "integer" || typ == "number" {
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return false, fmt.Errorf("quicklane: Body: field %s: oneof value %q is not a number", f.Name, v)
					}
					vals = append(vals, n)
				} else {
					vals = append(vals, v)
				}
			}
			s["enum"] = vals
		default:
			return false, fmt.Errorf("quicklane: Body: field %s: binding rule %q is not checked natively "+
				"(supported: required, min, max, len, gte, lte, gt, lt, oneof)", f.Name, key)
		}
	}
	return required, nil
}
