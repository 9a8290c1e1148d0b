module quicklane.local/bench/peers/gin

// Its own module, so the peers module builds without Gin: bench/run copies
// this directory to bench/out/peers-go and runs `go get github.com/gin-gonic/gin`
// there (no go.sum is kept).

go 1.22
