"""IBSI reference tags of imaging.radiomics' features, and IBSI's rule for agreeing with a reference value.

Used by ``examples/radiomics_reference.py`` (the tables in docs/imaging.md) and
by the tests that check the IBSI 1 digital phantom against the consensus values.
"""

from __future__ import annotations

import math

IBSI_TAGS = {  # IBSI tag -> our feature (3-D, averaged over directions where IBSI asks)
    "morph_volume": "shape:MeshVolume", "morph_area_mesh": "shape:SurfaceArea", "morph_av": "shape:SurfaceVolumeRatio",
    "morph_sphericity": "shape:Sphericity", "morph_diam": "shape:Maximum3DDiameter",
    "morph_vol_approx": "shape:VoxelVolume", "morph_pca_maj_axis": "shape:MajorAxisLength",
    "morph_pca_min_axis": "shape:MinorAxisLength", "morph_pca_least_axis": "shape:LeastAxisLength",
    "morph_pca_elongation": "shape:Elongation", "morph_pca_flatness": "shape:Flatness",
    "stat_mean": "firstorder:Mean", "stat_var": "firstorder:Variance", "stat_skew": "firstorder:Skewness",
    "stat_kurt": "firstorder:Kurtosis", "stat_median": "firstorder:Median", "stat_min": "firstorder:Minimum",
    "stat_p10": "firstorder:10Percentile", "stat_p90": "firstorder:90Percentile", "stat_max": "firstorder:Maximum",
    "stat_iqr": "firstorder:InterquartileRange", "stat_range": "firstorder:Range",
    "stat_mad": "firstorder:MeanAbsoluteDeviation", "stat_rmad": "firstorder:RobustMeanAbsoluteDeviation",
    "stat_energy": "firstorder:Energy", "stat_rms": "firstorder:RootMeanSquared",
    "ih_entropy": "firstorder:Entropy", "ih_uniformity": "firstorder:Uniformity",
    "cm_joint_max": "glcm:MaximumProbability", "cm_joint_avg": "glcm:JointAverage", "cm_joint_var": "glcm:SumSquares",
    "cm_joint_entr": "glcm:JointEntropy", "cm_diff_avg": "glcm:DifferenceAverage", "cm_diff_var": "glcm:DifferenceVariance",
    "cm_diff_entr": "glcm:DifferenceEntropy", "cm_sum_avg": "glcm:SumAverage", "cm_sum_entr": "glcm:SumEntropy",
    "cm_energy": "glcm:JointEnergy", "cm_contrast": "glcm:Contrast", "cm_dissimilarity": "glcm:DifferenceAverage",
    "cm_inv_diff": "glcm:Id", "cm_inv_diff_norm": "glcm:Idn", "cm_inv_diff_mom": "glcm:Idm",
    "cm_inv_diff_mom_norm": "glcm:Idmn", "cm_inv_var": "glcm:InverseVariance", "cm_corr": "glcm:Correlation",
    "cm_auto_corr": "glcm:Autocorrelation", "cm_clust_tend": "glcm:ClusterTendency", "cm_clust_shade": "glcm:ClusterShade",
    "cm_clust_prom": "glcm:ClusterProminence", "cm_info_corr1": "glcm:Imc1", "cm_info_corr2": "glcm:Imc2",
    "rlm_sre": "glrlm:ShortRunEmphasis", "rlm_lre": "glrlm:LongRunEmphasis", "rlm_lgre": "glrlm:LowGrayLevelRunEmphasis",
    "rlm_hgre": "glrlm:HighGrayLevelRunEmphasis", "rlm_srlge": "glrlm:ShortRunLowGrayLevelEmphasis",
    "rlm_srhge": "glrlm:ShortRunHighGrayLevelEmphasis", "rlm_lrlge": "glrlm:LongRunLowGrayLevelEmphasis",
    "rlm_lrhge": "glrlm:LongRunHighGrayLevelEmphasis", "rlm_glnu": "glrlm:GrayLevelNonUniformity",
    "rlm_glnu_norm": "glrlm:GrayLevelNonUniformityNormalized", "rlm_rlnu": "glrlm:RunLengthNonUniformity",
    "rlm_rlnu_norm": "glrlm:RunLengthNonUniformityNormalized", "rlm_r_perc": "glrlm:RunPercentage",
    "rlm_gl_var": "glrlm:GrayLevelVariance", "rlm_rl_var": "glrlm:RunVariance", "rlm_rl_entr": "glrlm:RunEntropy",
    "szm_sze": "glszm:SmallAreaEmphasis", "szm_lze": "glszm:LargeAreaEmphasis", "szm_lgze": "glszm:LowGrayLevelZoneEmphasis",
    "szm_hgze": "glszm:HighGrayLevelZoneEmphasis", "szm_szlge": "glszm:SmallAreaLowGrayLevelEmphasis",
    "szm_szhge": "glszm:SmallAreaHighGrayLevelEmphasis", "szm_lzlge": "glszm:LargeAreaLowGrayLevelEmphasis",
    "szm_lzhge": "glszm:LargeAreaHighGrayLevelEmphasis", "szm_glnu": "glszm:GrayLevelNonUniformity",
    "szm_glnu_norm": "glszm:GrayLevelNonUniformityNormalized", "szm_zsnu": "glszm:SizeZoneNonUniformity",
    "szm_zsnu_norm": "glszm:SizeZoneNonUniformityNormalized", "szm_z_perc": "glszm:ZonePercentage",
    "szm_gl_var": "glszm:GrayLevelVariance", "szm_zs_var": "glszm:ZoneVariance", "szm_zs_entr": "glszm:ZoneEntropy",
    "ngl_lde": "gldm:SmallDependenceEmphasis", "ngl_hde": "gldm:LargeDependenceEmphasis",
    "ngl_lgce": "gldm:LowGrayLevelEmphasis", "ngl_hgce": "gldm:HighGrayLevelEmphasis",
    "ngl_ldlge": "gldm:SmallDependenceLowGrayLevelEmphasis", "ngl_ldhge": "gldm:SmallDependenceHighGrayLevelEmphasis",
    "ngl_hdlge": "gldm:LargeDependenceLowGrayLevelEmphasis", "ngl_hdhge": "gldm:LargeDependenceHighGrayLevelEmphasis",
    "ngl_glnu": "gldm:GrayLevelNonUniformity", "ngl_glnu_norm": "gldm:GrayLevelNonUniformityNormalized",
    "ngl_dcnu": "gldm:DependenceNonUniformity", "ngl_dcnu_norm": "gldm:DependenceNonUniformityNormalized",
    "ngl_dc_perc": "gldm:DependencePercentage", "ngl_gl_var": "gldm:GrayLevelVariance",
    "ngl_dc_var": "gldm:DependenceVariance", "ngl_dc_entr": "gldm:DependenceEntropy", "ngl_dc_energy": "gldm:DependenceEnergy",
    "ngt_coarseness": "ngtdm:Coarseness", "ngt_contrast": "ngtdm:Contrast", "ngt_busyness": "ngtdm:Busyness",
    "ngt_complexity": "ngtdm:Complexity", "ngt_strength": "ngtdm:Strength",
}


def reference_row(rows: dict[str, dict[str, str]], tag: str) -> dict[str, str]:
    """A tag's row in an IBSI reference table: the plain tag, else its 3-D averaged or 3-D variant."""
    return rows.get(tag) or rows.get(f"{tag}_3D_avg") or rows[f"{tag}_3D"]


def agrees(value: float, reference: float, tolerance: float) -> bool:
    """IBSI reports 3 significant figures: a value agrees when it is within the tolerance of the
    reference, or rounds to it at that precision."""
    half_digit = 0.5 * 10 ** (math.floor(math.log10(abs(reference))) - 2) if reference else 0.5e-3
    return abs(value - reference) <= tolerance + half_digit
