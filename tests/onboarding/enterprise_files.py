"""A new enterprise's file (一企一档) for the onboarding tests, valid as written; each test
breaks one thing in it. Line numbers matter: tests assert exact ``file:line`` errors."""

from __future__ import annotations

VALID = """\
enterprise:
  id: xinyuan-gas
  name: 金山镇鑫源燃气储配站
  kind: gas_utility
  region: jinshan
  people:
    - id: xy-ops-qian
      name: 钱伟
      role: 操作负责人
      phone: "+8613800040001"
    - id: xy-main-feng
      name: 冯丽
      role: 主要负责人
      phone: "+8613800040002"
  chain:
    blue: [xy-ops-qian]
    yellow: [xy-ops-qian]
    orange: [xy-ops-qian, xy-main-feng]
    red: [xy-ops-qian, xy-main-feng, duty:township]
  sites:
    - id: station-1
      name: 储配站
      sensors:
        - id: GD-01
          name: 压缩机房燃气探测器
          kind: combustible_gas
          unit: "%LEL"
          range: [0, 100]
          rules:
            - preset: combustible_gas
        - id: LT-01
          name: 储罐液位
          kind: tank_level
          unit: m
          range: [0, 12]
          device: TK1
          rules:
            - preset: tank_level_high
              setpoints: {orange: 10.5, red: 11.0}
"""
"""Line 2: the enterprise id; 7/11: people ids; 10/14: phones; 24/31: sensor ids;
26/33: kinds; 39: set-points."""


def broken(old: str, new: str, count: int = 1) -> str:
    """``VALID`` with an exact piece of text replaced (which must be there ``count`` times)."""
    assert VALID.count(old) == count, old
    return VALID.replace(old, new)
