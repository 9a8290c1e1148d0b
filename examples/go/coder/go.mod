module github.com/quicklane/quicklane/examples/go/coder

go 1.23

require github.com/quicklane/quicklane/bindings/go v0.0.0

require github.com/coder/websocket v1.8.15

replace github.com/quicklane/quicklane/bindings/go => ../../../bindings/go
