module github.com/anelab/anelab

go 1.26.8
