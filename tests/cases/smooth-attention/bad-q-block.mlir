// RUN: lowbit opt %s --pass-pipeline='smooth-attention{q-block=0}'
