// Command gin is the Gin peer of examples/go/hello (bench/run): the example
// contract in release mode, gin.New() (no logger middleware, as Gin's docs
// advise for production behind one's own logging), GOMAXPROCS from the run.
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
)

func main() {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"message": "pong"}) })
	r.GET("/hello/:name", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"hello": c.Param("name")}) })
	r.POST("/echo", func(c *gin.Context) {
		body, err := io.ReadAll(c.Request.Body)
		var v any
		if err != nil || json.Unmarshal(body, &v) != nil {
			c.JSON(http.StatusBadRequest, gin.H{"detail": "invalid JSON"})
			return
		}
		c.JSON(http.StatusOK, v)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("gin on http://127.0.0.1:%s", port)
	log.Fatal(r.Run("127.0.0.1:" + port))
}
