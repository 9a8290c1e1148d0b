package quicklane_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

func TestNativeRules(t *testing.T) {
	app := quicklane.New(quiet, quicklane.WithWorkers(1))
	var calls atomic.Int32
	app.GET("/limited", func(c *quicklane.Context) error { calls.Add(1); return c.String(200, "ok") },
		quicklane.RateLimit(5, time.Minute))
	app.GET("/private", func(c *quicklane.Context) error { calls.Add(1); return c.String(200, "private") },
		quicklane.RequireAPIKey())
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
	app.APIKeys([]string{"secret-key"}, "", "")
	app.CORS(quicklane.CORS{Origins: []string{"https://app.example"}, Methods: []string{"GET", "POST"}})
	app.Metrics("/metrics")
	base := start(t, app)
	for i := 0; i < 5; i++ {
		expect(t, do(t, "GET", base+"/limited", ""), 200, "ok")
	}
	r := do(t, "GET", base+"/limited", "")
	expect(t, r, 429, `{"detail":"Too Many Requests"}`)
	if r.header.Get("Retry-After") != "12" {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	expect(t, do(t, "GET", base+"/private", ""), 401, `{"detail":"Not authenticated"}`)
	expect(t, do(t, "GET", base+"/private", "", "X-API-Key", "nope"), 403, `{"detail":"Invalid API key"}`)
	expect(t, do(t, "GET", base+"/private", "", "X-API-Key", "secret-key"), 200, "private")
	pre := do(t, "OPTIONS", base+"/private", "", "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", pre.status, pre.header)
	}
	if h := do(t, "GET", base+"/ping", "", "Origin", "https://evil.example").header; h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a foreign origin got allow headers: %v", h)
	}
	m := do(t, "GET", base+"/metrics", "").body
	if !strings.Contains(m, `quicklane_requests_total{method="GET",route="/limited",status="429"} 1`) ||
		!strings.Contains(m, "quicklane_requests_host_total 6") {
		t.Fatalf("metrics:\n%s", m)
	}
	if calls.Load() != 6 {
		t.Fatalf("handler calls = %d, want 6", calls.Load())
	}
}

func TestCache(t *testing.T) {
	app := quicklane.New(quiet, quicklane.WithWorkers(1))
	var calls atomic.Int32
	app.GET("/cached/{key}", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]any{"key": c.Param("key"), "calls": calls.Add(1)})
	}, quicklane.Cache(time.Minute))
	base := start(t, app)
	expect(t, do(t, "GET", base+"/cached/a", ""), 200, `{"calls":1,"key":"a"}`)
	hit := do(t, "GET", base+"/cached/a", "")
	expect(t, hit, 200, `{"calls":1,"key":"a"}`)
	if hit.header.Get("Age") != "0" || hit.header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("hit headers: %v", hit.header)
	}
	expect(t, do(t, "GET", base+"/cached/b", ""), 200, `{"calls":2,"key":"b"}`)
}

func TestNativeRulesRefused(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/private", func(c *quicklane.Context) error { return nil }, quicklane.RequireAPIKey())
	if err := app.Start("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "requires an API key") {
		t.Fatalf("err = %v", err)
	}
	app2 := quicklane.New(quiet)
	app2.CORS(quicklane.CORS{Origins: []string{"*"}, Credentials: true})
	if err := app2.Start("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("err = %v", err)
	}
	app3 := quicklane.New(quiet)
	app3.GET("/x", func(c *quicklane.Context) error { return nil }, quicklane.RateLimit(0, time.Second))
	if err := app3.Start("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "RateLimit") {
		t.Fatalf("err = %v", err)
	}
}

type item struct {
	Name  string   `json:"name" binding:"required,min=1"`
	Price float64  `json:"price" binding:"required,gte=0"`
	Tags  []string `json:"tags,omitempty"`
}

func TestValidationFromStructTags(t *testing.T) {
	app := quicklane.New(quiet, quicklane.WithWorkers(1))
	var calls atomic.Int32
	app.POST("/items", func(c *quicklane.Context) error {
		calls.Add(1)
		var it item
		if err := c.BindJSON(&it); err != nil {
			return err
		}
		return c.JSON(201, it)
	}, quicklane.Body(item{}))
	app.GET("/items/{id}", func(c *quicklane.Context) error {
		calls.Add(1)
		return c.String(200, c.Param("id"))
	}, quicklane.Params(`{"id":{"in":"path","type":"integer","minimum":1}}`))
	base := start(t, app)
	expect(t, do(t, "POST", base+"/items", `{"name":"x","price":1.5}`), 201, `{"name":"x","price":1.5}`)
	bad := do(t, "POST", base+"/items", `{"name":"","price":-1}`)
	if bad.status != 422 || !strings.Contains(bad.body, `"loc":["body","name"]`) ||
		!strings.Contains(bad.body, `"loc":["body","price"]`) {
		t.Fatalf("invalid body: %d %s", bad.status, bad.body)
	}
	missing := do(t, "POST", base+"/items", `{"name":"x"}`)
	if missing.status != 422 || !strings.Contains(missing.body, `"type":"missing","loc":["body","price"]`) {
		t.Fatalf("missing field: %d %s", missing.status, missing.body)
	}
	if r := do(t, "POST", base+"/items", `{"name":`); r.status != 400 {
		t.Fatalf("not JSON: %d", r.status)
	}
	if r := do(t, "GET", base+"/items/0", ""); r.status != 422 || !strings.Contains(r.body, `"loc":["path","id"]`) {
		t.Fatalf("bad id: %d %s", r.status, r.body)
	}
	expect(t, do(t, "GET", base+"/items/3", ""), 200, "3")
	if calls.Load() != 2 {
		t.Fatalf("handler calls = %d, want 2", calls.Load())
	}
}

func TestBodyRuleRefused(t *testing.T) {
	type weird struct {
		A string `binding:"email"`
	}
	app := quicklane.New(quiet)
	app.POST("/x", func(c *quicklane.Context) error { return nil }, quicklane.Body(weird{}))
	if err := app.Start("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "not checked natively") {
		t.Fatalf("err = %v", err)
	}
}

// Issue 23: typed query parameters read back in the grammar the core validated
// (1_000, yes/on), not strconv.ParseBool's.
func TestTypedQueryAccessors(t *testing.T) {
	app := quicklane.New(quiet)
	app.GET("/q", func(c *quicklane.Context) error {
		n, nok := c.QueryInt("limit")
		f, fok := c.QueryFloat("ratio")
		b, bok := c.QueryBool("active")
		_, mok := c.QueryInt("missing")
		return c.String(200, fmt.Sprintf("%d %v %g %v %v %v %v", n, nok, f, fok, b, bok, mok))
	}, quicklane.Params(`{"limit":{"in":"query","type":"integer"},"ratio":{"in":"query","type":"number"},`+
		`"active":{"in":"query","type":"boolean"}}`))
	base := start(t, app)
	expect(t, do(t, "GET", base+"/q?limit=1_000&ratio=2.5&active=yes", ""), 200, "1000 true 2.5 true true true false")
	expect(t, do(t, "GET", base+"/q?limit=-3&ratio=inf&active=OFF", ""), 200, "-3 true +Inf true false true false")
	if r := do(t, "GET", base+"/q?active=maybe", ""); r.status != 422 {
		t.Fatalf("active=maybe: %d %s", r.status, r.body)
	}
}
