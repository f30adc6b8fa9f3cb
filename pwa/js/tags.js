// Tags are stored as the words people use (独居老人 …). Known ones have a label per language;
// any other tag a worker typed is shown as typed.

import { t } from "./i18n.js";

const CODES = {
  "独居老人": "living_alone", "低保户": "dibao", "残疾人": "disabled", "留守儿童": "left_behind_child",
  "党员中心户": "party_anchor", "困难家庭": "hardship", "山区农户": "mountain_farmer",
  "党员": "party_member", "慢性病": "chronic_illness", "高龄": "very_old", "外出务工": "migrant_worker",
  "低保": "dibao_person",
};

export const HOUSEHOLD_TAGS = ["独居老人", "低保户", "残疾人", "留守儿童", "党员中心户", "困难家庭", "山区农户"];
export const RESIDENT_TAGS = ["党员", "残疾人", "慢性病", "高龄", "外出务工", "留守儿童", "低保"];
// Tags that make a household a priority for visits (shown in warm colours).
export const PRIORITY = new Set(["独居老人", "低保户", "残疾人", "留守儿童", "困难家庭", "高龄", "慢性病"]);

export function tagLabel(value) {
  const code = CODES[value];
  return code ? t("tag." + code) : value;
}

export const TAG_CODES = Object.values(CODES);
