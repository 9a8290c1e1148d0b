// Command fastpath serves the quicklane fastpath contract from Go. Validation,
// the response cache, CORS, the rate limit, API keys, static files (./static),
// /metrics, /healthz and /ping are native rules: a request they answer never
// enters Go.
//
//	POST /items         body checked natively (422 FastAPI shape / 400), then 201 from Go
//	GET  /items/{id}    id an integer >= 1 (else 422 natively), 200 from Go
//	GET  /cached/{key}  {"key","calls"} from Go, cached natively per path for 2 s
//	GET  /limited       5 per 60 s per client IP, then 429 + Retry-After
//	GET  /private       X-API-Key: secret-key (401 missing, 403 wrong)
//
// Run from examples/ (cd examples && go run ./go/fastpath). PORT (default
// 8080) and WORKERS (default: one loop per core) select the port and the loops.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	quicklane "github.com/quicklane/quicklane/bindings/go"
)

// Item is the body of POST /items: json and Gin binding tags.
type Item struct {
	Name  string   `json:"name" binding:"required,min=1"`
	Price float64  `json:"price" binding:"required,gte=0"`
	Tags  []string `json:"tags,omitempty"`
}

// quicklane.BodyStrict(Item{}) derives the JSON Schema from the tags above
// and refuses unknown fields (as pydantic's extra="forbid"); quicklane.Body
// would allow them, as encoding/json does.

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
	var nextID, cachedCalls atomic.Int64

	app := quicklane.New(quicklane.WithWorkers(workers))
	app.Static("GET", "/ping", "application/json", []byte(`{"message":"pong"}`))
	app.Static("GET", "/healthz", "application/json", []byte(`{"status":"ok"}`))
	app.POST("/items", func(c *quicklane.Context) error {
		var item Item // valid here: the core checked it
		if err := c.BindJSON(&item); err != nil {
			return err
		}
		if item.Tags == nil {
			item.Tags = []string{}
		}
		return c.JSON(201, map[string]any{"id": nextID.Add(1), "name": item.Name, "price": item.Price, "tags": item.Tags})
	}, quicklane.BodyStrict(Item{}))
	app.GET("/items/{id}", func(c *quicklane.Context) error {
		id, _ := strconv.ParseInt(c.Param("id"), 10, 64) // an integer >= 1 here
		return c.JSON(200, map[string]any{"id": id, "name": fmt.Sprintf("item %d", id), "price": 9.5, "tags": []string{}})
	}, quicklane.Params(`{"id":{"in":"path","type":"integer","minimum":1}}`))
	app.GET("/cached/{key}", func(c *quicklane.Context) error { // runs once per path per 2 s
		return c.JSON(200, map[string]any{"key": c.Param("key"), "calls": cachedCalls.Add(1)})
	}, quicklane.Cache(2*time.Second))
	app.GET("/limited", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]bool{"limited": true})
	}, quicklane.RateLimit(5, time.Minute))
	app.GET("/private", func(c *quicklane.Context) error {
		return c.JSON(200, map[string]bool{"private": true})
	}, quicklane.RequireAPIKey())
	app.APIKeys([]string{"secret-key"}, "", "")
	app.CORS(quicklane.CORS{Origins: []string{"https://app.example"}, Methods: []string{"GET", "POST"}})
	app.StaticDir("/static/", "static")
	app.Metrics("/metrics")

	if err := app.Start("127.0.0.1:" + port); err != nil { // returns once the listeners are bound
		log.Fatal(err)
	}
	log.Printf("quicklane %s (Go) listening on http://%s", quicklane.Version(), app.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		log.Print(err)
	}
}
