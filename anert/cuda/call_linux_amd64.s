//go:build linux && amd64

#include "textflag.h"

// anelab_cuda_call24 calls a C function with up to 24 integer or pointer arguments in the System V
// AMD64 convention (six in registers, the rest on the stack), on the g0 stack through
// runtime.cgocall. Its one argument (DI) points to a callArgs: fn, a[24], r1. purego's
// own trampoline stops at 15 arguments; cublasGemmStridedBatchedEx takes 23.
#define STACK_SIZE 160
#define PTR_ADDRESS (STACK_SIZE - 8)

GLOBL ·call24ABI0(SB), NOPTR|RODATA, $8
DATA ·call24ABI0(SB)/8, $anelab_cuda_call24(SB)
TEXT anelab_cuda_call24(SB), NOSPLIT|NOFRAME, $0
	PUSHQ BP
	MOVQ  SP, BP
	SUBQ  $STACK_SIZE, SP
	MOVQ  DI, PTR_ADDRESS(SP)
	MOVQ  DI, R11

	MOVQ 56(R11), R12
	MOVQ R12, 0(SP)
	MOVQ 64(R11), R12
	MOVQ R12, 8(SP)
	MOVQ 72(R11), R12
	MOVQ R12, 16(SP)
	MOVQ 80(R11), R12
	MOVQ R12, 24(SP)
	MOVQ 88(R11), R12
	MOVQ R12, 32(SP)
	MOVQ 96(R11), R12
	MOVQ R12, 40(SP)
	MOVQ 104(R11), R12
	MOVQ R12, 48(SP)
	MOVQ 112(R11), R12
	MOVQ R12, 56(SP)
	MOVQ 120(R11), R12
	MOVQ R12, 64(SP)
	MOVQ 128(R11), R12
	MOVQ R12, 72(SP)
	MOVQ 136(R11), R12
	MOVQ R12, 80(SP)
	MOVQ 144(R11), R12
	MOVQ R12, 88(SP)
	MOVQ 152(R11), R12
	MOVQ R12, 96(SP)
	MOVQ 160(R11), R12
	MOVQ R12, 104(SP)
	MOVQ 168(R11), R12
	MOVQ R12, 112(SP)
	MOVQ 176(R11), R12
	MOVQ R12, 120(SP)
	MOVQ 184(R11), R12
	MOVQ R12, 128(SP)
	MOVQ 192(R11), R12
	MOVQ R12, 136(SP)

	MOVQ 8(R11), DI
	MOVQ 16(R11), SI
	MOVQ 24(R11), DX
	MOVQ 32(R11), CX
	MOVQ 40(R11), R8
	MOVQ 48(R11), R9
	XORL AX, AX

	MOVQ 0(R11), R10
	CALL R10

	MOVQ PTR_ADDRESS(SP), DI
	MOVQ AX, 200(DI)

	XORL AX, AX
	ADDQ $STACK_SIZE, SP
	POPQ BP
	RET
