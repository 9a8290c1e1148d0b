module github.com/quicklane/quicklane/bindings/go

go 1.22
