package script

import "github.com/anelab/anelab/anert/train"

func trainPoint(loss float64) train.Point { return train.Point{Loss: loss} }
func trainPointStep(step int) train.Point { return train.Point{Step: step} }
