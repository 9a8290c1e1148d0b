module github.com/quicklane/quicklane/examples/go/fastpath

go 1.22

require github.com/quicklane/quicklane/bindings/go v0.0.0

replace github.com/quicklane/quicklane/bindings/go => ../../../bindings/go
