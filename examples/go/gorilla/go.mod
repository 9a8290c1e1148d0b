module github.com/quicklane/quicklane/examples/go/gorilla

go 1.22

require github.com/quicklane/quicklane/bindings/go v0.0.0

require github.com/gorilla/websocket v1.5.3

replace github.com/quicklane/quicklane/bindings/go => ../../../bindings/go
