module github.com/mlskit/mlskit

go 1.26
